"""nas.search.record: what a study records about what produced its scores (space, tables, data)."""
import numpy as np


def test_item1_user_data_content_and_table_calibration_are_in_the_record(tmp_path):
    """Item 1: the same --data path with other images, or the same table with another calibration, must not
    resume a study as if nothing changed: both are part of the record, its location is not."""
    import shutil

    import nas
    from nas.paths import SHIPPED_TABLES_DIR
    from nas.search.record import data_hash, table_record

    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 4)
    before = data_hash(str(path))
    assert before == data_hash(str(path)) and data_hash("digits") is None
    np.savez(path, x=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 4)
    assert data_hash(str(path)) != before
    for suffix in (".csv", ".meta.yaml"):
        shutil.copy(SHIPPED_TABLES_DIR / f"raspi4{suffix}", tmp_path / f"raspi4{suffix}")
    shipped, copy = nas.latency.load("raspi4"), nas.latency.load(str(tmp_path / "raspi4.csv"))
    assert table_record(copy) == table_record(shipped)  # another folder, the same measurements
    meta = (tmp_path / "raspi4.meta.yaml").read_text()
    (tmp_path / "raspi4.meta.yaml").write_text(meta + "calibration:\n  arch: {offset_ms: 0.5, scale: 1.0, "
                                                      "per_layer_ms: 0.0, n: 5, dtype: arch, date: '2026-01-01'}\n")
    recalibrated = table_record(nas.latency.load(str(tmp_path / "raspi4.csv")))
    assert recalibrated["content_hash"] == table_record(shipped)["content_hash"]
    assert recalibrated["calibration"] != table_record(shipped)["calibration"]
