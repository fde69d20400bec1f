-- The README's query on the omop stage's rows: each person's imaging
-- series with the study (procedure) they belong to.  person is the site's
-- own CDM table (tests/integration/t-omop.sh makes a small one).
-- tests/integration/t-omop.sh runs this file as it is.
SELECT p.person_id, p.year_of_birth, po.procedure_date,
       io.image_series_uid, io.modality_concept_id, io.anatomic_site_concept_id
FROM omop.image_occurrence io
JOIN omop.person p ON p.person_id = io.person_id
JOIN omop.procedure_occurrence po ON po.procedure_occurrence_id = io.procedure_occurrence_id
ORDER BY p.person_id, po.procedure_date, io.image_series_uid;
