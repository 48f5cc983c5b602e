"""TFDS builder `delphes_pf` 1.1.0: the `.pkl.bz2` event files as array_record files, unpadded, in
file order.

Layout as upstream 1.1.0 (`X` (None, 12), targets unpadded) but with the 7 published target
columns (no `jet_idx`). train = ttbar files, test = QCD files. The build never touches the
network: the files come from a manual directory, and the GCS lookup for prepared data is off.

Order: the benchmark wants "event k" to mean the same event on every machine, so shuffling at
build time is disabled and the dataset order is the file order (parse_name's sort_key), then the
event order inside each file.

Format: array_record, which TFDS reads through random-access data sources (`as_data_source`)
without TensorFlow; so a machine with only JAX or PyTorch builds and reads the data set (TFDS's
writer needs no TensorFlow either: it serialises the examples with its own protobuf code).

Element counts: the build ends by writing every event's element count per split
(hepbench.mlpf.data.lengths), which the input pipeline plans its batches from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from hepbench import __version__
from hepbench.core.errors import DataFormatError
from hepbench.mlpf.data.built import DATASET_NAME, DATASET_VERSION, FILE_FORMAT, INFO_FILE, built_dir, require_built
from hepbench.mlpf.data.delphes import read_files
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES, ZENODO_RECORD
from hepbench.mlpf.data.integrity import MANIFEST_FILE, record_checksums, verify
from hepbench.mlpf.data.lengths import has_element_counts, write_element_counts
from hepbench.mlpf.data.sources import Sources, combine_checksums, file_sha256, list_sources

# Raw bytes, not a protobuf FloatList: TFDS fills FloatLists one float at a time in Python
# (~16 ms per 5,000-element array), which made the build, not bz2, the slow step.
_ENCODING = tfds.features.Encoding.BYTES
_HKEY_SPACE = 2**128  # TFDS's shuffler keys are 128-bit integers


def _provenance(sources: Sources) -> dict:
    files = [
        {"name": p.name, "split": split, "sha256": file_sha256(p), "bytes": p.stat().st_size}
        for split, paths in sources.splits.items()
        for p in paths
    ]
    return {
        "source_files": files,
        "synthetic": sources.synthetic,
        "source_checksum": combine_checksums((f["name"], f["sha256"]) for f in files),
        "hepbench_version": __version__,
    }


# skip_registration: this package always instantiates the class itself, so it stays out of TFDS's
# global name registry; re-importing or reloading this module can then never collide with an
# earlier registration of `delphes_pf`, and no TFDS catalog entry can shadow it.
class DelphesPf(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Delphes particle-flow events (Zenodo 4559324 or synthetic), unpadded, in file order."""

    name = DATASET_NAME
    # TFDS 4.9.10 computes code_path with `importlib_resources`, a package it only requires on
    # Python < 3.9 (ModuleNotFoundError on 3.11 for any builder outside tensorflow_datasets).
    # The path only serves to find a download checksums file, which this builder never uses.
    code_path = tfds.core.Path(__file__)
    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES = {DATASET_VERSION: "Unpadded; 7 target columns; train = ttbar, test = QCD; file order."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Put the event files, tev14_pythia8_{{ttbar|qcd}}_J_I.pkl.bz2, in the manual directory: they are
    the files of Zenodo record {ZENODO_RECORD} (https://zenodo.org/record/{ZENODO_RECORD}), or
    synthetic files (synth_tev14_pythia8_...) made by `hepbench data synth`, never both kinds.
    ttbar files become the `train` split, QCD files the `test` split.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="MLPF Delphes events: X (elements x 12), ygen / ycand (elements x 7).",
            features=tfds.features.FeaturesDict(
                {
                    "X": tfds.features.Tensor(shape=(None, NUM_X_FEATURES), dtype=np.float32, encoding=_ENCODING),
                    "ygen": tfds.features.Tensor(shape=(None, NUM_Y_FEATURES), dtype=np.float32, encoding=_ENCODING),
                    "ycand": tfds.features.Tensor(shape=(None, NUM_Y_FEATURES), dtype=np.float32, encoding=_ENCODING),
                }
            ),
            homepage=f"https://zenodo.org/record/{ZENODO_RECORD}",
            metadata=tfds.core.MetadataDict(),  # provenance, saved as metadata.json
            disable_shuffling=True,  # dataset order = file order (see the module docstring)
        )

    def _split_generators(self, dl_manager):
        sources = list_sources(dl_manager.manual_dir)
        self.info.metadata.update(_provenance(sources))
        return {split: self._generate_examples(paths) for split, paths in sources.splits.items()}

    def _generate_examples(self, paths: list[Path]) -> Iterator[tuple[int, dict]]:
        # With disable_shuffling TFDS sorts the examples by their raw key, so the key must sort
        # in file order. A string key such as "file:index" would sort "x_0_10" before "x_0_2",
        # and once a split exceeds 1 GB TFDS spills to disk buckets that only accept integer
        # keys. Hence integers: the file's rank spreads the keys over the whole 128-bit space
        # (so the spill buckets stay evenly filled), plus the event index inside the file.
        step = _HKEY_SPACE // max(1, len(paths))
        # The safe reader (never plain pickle), one process per core: bz2 sets the pace.
        for rank, (_, events) in enumerate(read_files(paths, jobs=os.cpu_count() or 1)):
            for index, event in enumerate(events):
                yield rank * step + index, {"X": event.X, "ygen": event.ygen, "ycand": event.ycand}


def load_builder(data_dir: str | os.PathLike) -> DelphesPf:
    """The builder of a data set already built under `data_dir` (in this version's format)."""
    require_built(data_dir)
    return DelphesPf(data_dir=os.fspath(data_dir), file_format=FILE_FORMAT)


def build(manual_dir: str | os.PathLike, data_dir: str | os.PathLike) -> DelphesPf:
    """Build (or reuse) the data set from the files in `manual_dir`, offline, without Beam, then
    its element-count table (hepbench.mlpf.data.lengths) and, last, its checksum manifest
    (hepbench.mlpf.data.integrity). A reused build that has a manifest is verified first."""
    sources = list_sources(manual_dir)  # fail before TFDS creates any directory
    where = built_dir(data_dir)
    reused = (where / INFO_FILE).is_file()
    if reused:
        # TFDS would silently reuse whatever is there; only reuse a build of these very files.
        builder = load_builder(data_dir)
        built = builder.info.metadata.get("source_checksum")
        wanted = _provenance(sources)["source_checksum"]
        if built != wanted:
            raise DataFormatError(
                f"{where} was built from other files (source checksum {built}) than "
                f"those in {manual_dir} ({wanted}); remove it or build into another data directory"
            )
    else:
        builder = DelphesPf(data_dir=os.fspath(data_dir), file_format=FILE_FORMAT)
        config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir), try_download_gcs=False)
        builder.download_and_prepare(download_config=config)
    if reused and (where / MANIFEST_FILE).is_file():
        verify(where)  # a reused build must still be the one that was built, before anything is rewritten
    # Read back from the written splits (one decode per event); a reused build without a valid
    # table (an earlier hepbench's) gets one, so rebuilding is the cure the pipeline's error names.
    if not reused or not has_element_counts(where):
        write_element_counts(where)
    record_checksums(where)  # last: over every file of the build, the element-count table included
    return builder
