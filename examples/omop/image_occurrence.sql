-- image_occurrence: the Medical Imaging CDM (MI-CDM) extension table of the
-- OHDSI Medical Imaging Working Group, for PostgreSQL.
--
-- Definition: Park WY, Jeon K, Schmidt TS, et al. "Development of Medical
-- Imaging Data Standardization for Imaging-Based Observational Research:
-- OMOP Common Data Model Extension". J Imaging Inform Med 37, 899-908 (2024),
-- Table 2. https://doi.org/10.1007/s10278-024-00982-6
-- Also published by the working group at https://ohdsi.github.io/ImageWG/
-- and in https://github.com/OHDSI/ImageWG
-- (inst/csv/new_csv/OMOP_CDM_Medical_Imaging_Ex_Field_Level.csv).
-- Primary key as in the working group's PostgreSQL DDL,
-- https://github.com/dr-you-group/ImageWG
-- (inst/ddl/5.4/postgresql/MICDM_postgresql_5.4_primary_keys.sql).
--
-- Types: the specification's varchar(max) is TEXT in PostgreSQL (as the
-- OHDSI CDM DDL does for varchar(MAX)); the study and series UIDs are
-- varchar(250) as in Table 2. Each row is one DICOM series.
--
-- No schema prefix and no foreign keys: run after SET search_path.

CREATE TABLE IF NOT EXISTS image_occurrence (
	image_occurrence_id integer NOT NULL,
	person_id integer NOT NULL,
	procedure_occurrence_id integer NOT NULL,
	visit_occurrence_id integer NULL,
	anatomic_site_concept_id integer NULL,
	wadors_uri TEXT NULL,
	local_path TEXT NULL,
	image_occurrence_date date NOT NULL,
	image_study_uid varchar(250) NOT NULL,
	image_series_uid varchar(250) NOT NULL,
	modality_concept_id integer NOT NULL,
	CONSTRAINT xpk_image_occurrence PRIMARY KEY (image_occurrence_id)
);
