"""The Delphes data layer: published format, safe reader, generator, TFDS builder, input pipeline.

format        the published file format: columns, class ids, element types, file names
delphes       safe reading, validation and writing of the `.pkl.bz2` event files
sources       a directory's data files by split, in order, and their checksums
synth/        the deterministic generator of events in the published format (physics, detector)
fetch         download of the published files from Zenodo (resumable, retried, verified)
tfds_builder  the TFDS builder `delphes_pf` 1.1.0 (array_record)
built         where the built data set is by default, its format and what it holds (no TFDS)
records       random access to a built split (TFDS data source, no TensorFlow)
info          `hepbench data info`: what a data set holds, and its checksum
lengths       the element-count table of a built set (element_counts.json)
integrity     the checksum manifest of a built set (checksums.json), verified before a run times
bucketing     length bucketing: batches of one padded length within a bounded look-ahead
pipeline      the host input pipeline: built events → padded NumPy batches, for every engine
prefetch      ordered prefetch of the batches by background threads
cli           `hepbench data ...`
"""
