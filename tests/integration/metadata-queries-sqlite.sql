-- The README's queries on the stored headers, SQLite (the default state,
-- .thlhp/state.db): table metadata(series_uid, sop_uid, patient_id,
-- study_uid, header), one row per instance, header DICOM JSON text (PS3.18
-- F.2): "GGGGEEEE": {"vr": ..., "Value": [...]}.
-- tests/integration/t-metadata.sh runs this file as it is.

-- 1. Series with slices 1 mm thick or thinner (SliceThickness, 0018,0050).
SELECT patient_id, series_uid,
       json_extract(header, '$."00180050".Value[0]') AS slice_thickness,
       count(*) AS instances
FROM metadata
WHERE json_extract(header, '$."00180050".Value[0]') <= 1
GROUP BY 1, 2, 3
ORDER BY 1, 2;

-- 2. All CT series of one patient with their reconstruction kernel
--    (Modality 0008,0060; SeriesDescription 0008,103E; ConvolutionKernel
--    0018,1210).
SELECT series_uid,
       json_extract(header, '$."0008103E".Value[0]') AS series_description,
       json_extract(header, '$."00181210".Value[0]') AS convolution_kernel,
       count(*) AS instances
FROM metadata
WHERE patient_id = '1CT1'
  AND json_extract(header, '$."00080060".Value[0]') = 'CT'
GROUP BY 1, 2, 3
ORDER BY 1;

-- 3. image_occurrence joined to person: with the omop stage (not yet here).
