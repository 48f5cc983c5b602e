"""The Delphes data layer: published format, safe reader, generator, TFDS builder, tf.data pipeline."""
