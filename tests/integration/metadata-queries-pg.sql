-- The README's queries on the stored headers, PostgreSQL ([state] url =
-- postgresql://...): table metadata(series_uid, sop_uid, patient_id,
-- study_uid, header jsonb), one row per instance, header in DICOM JSON
-- (PS3.18 F.2): "GGGGEEEE": {"vr": ..., "Value": [...]}.
-- tests/integration/t-metadata.sh runs this file as it is.

-- 1. Series with slices 1 mm thick or thinner (SliceThickness, 0018,0050).
SELECT patient_id, series_uid,
       (header->'00180050'->'Value'->>0)::float AS slice_thickness,
       count(*) AS instances
FROM metadata
WHERE (header->'00180050'->'Value'->>0)::float <= 1
GROUP BY 1, 2, 3
ORDER BY 1, 2;

-- 2. All CT series of one patient with their reconstruction kernel
--    (Modality 0008,0060; SeriesDescription 0008,103E; ConvolutionKernel
--    0018,1210).  @> (contains) can use the GIN index on header.
SELECT series_uid,
       header->'0008103E'->'Value'->>0 AS series_description,
       header->'00181210'->'Value'->>0 AS convolution_kernel,
       count(*) AS instances
FROM metadata
WHERE patient_id = '1CT1'
  AND header @> '{"00080060": {"Value": ["CT"]}}'
GROUP BY 1, 2, 3
ORDER BY 1;

-- 3. image_occurrence joined to person: with the omop stage (not yet here).
