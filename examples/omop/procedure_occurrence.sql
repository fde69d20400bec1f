-- procedure_occurrence: OMOP Common Data Model v5.4, for PostgreSQL.
--
-- Definition: the official OHDSI DDL, https://github.com/OHDSI/CommonDataModel
-- inst/ddl/5.4/postgresql/OMOPCDM_postgresql_5.4_ddl.sql (columns) and
-- inst/ddl/5.4/postgresql/OMOPCDM_postgresql_5.4_primary_keys.sql
-- (xpk_procedure_occurrence). Documentation:
-- https://ohdsi.github.io/CommonDataModel/cdm54.html#procedure_occurrence
--
-- No schema prefix and no foreign keys: run after SET search_path.

CREATE TABLE IF NOT EXISTS procedure_occurrence (
	procedure_occurrence_id integer NOT NULL,
	person_id integer NOT NULL,
	procedure_concept_id integer NOT NULL,
	procedure_date date NOT NULL,
	procedure_datetime TIMESTAMP NULL,
	procedure_end_date date NULL,
	procedure_end_datetime TIMESTAMP NULL,
	procedure_type_concept_id integer NOT NULL,
	modifier_concept_id integer NULL,
	quantity integer NULL,
	provider_id integer NULL,
	visit_occurrence_id integer NULL,
	visit_detail_id integer NULL,
	procedure_source_value varchar(50) NULL,
	procedure_source_concept_id integer NULL,
	modifier_source_value varchar(50) NULL,
	CONSTRAINT xpk_procedure_occurrence PRIMARY KEY (procedure_occurrence_id)
);
