"""The result folders stay under a size cap (app/disk_cap.py); sessions and Gradio's cache are bounded."""

import os

from app import pictures, service
from app.disk_cap import FolderCap, prune


def write(path, size: int, mtime: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))


def test_prune_deletes_the_oldest_files_until_the_folder_fits_and_never_a_young_one(tmp_path):
    now = 10_000.0
    write(tmp_path / "a" / "old.png", 400, now - 500)
    write(tmp_path / "b" / "mid.png", 300, now - 400)
    write(tmp_path / "new.png", 300, now - 300)
    write(tmp_path / "young.png", 300, now - 5)
    # 1,300 bytes, cap 700: the two oldest go (600 freed), then 700 ≤ 700
    assert prune(tmp_path, max_bytes=700, min_age_s=60, now=now) == 700
    left = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert (
        left == ["new.png", "young.png"] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    )
    # cap 0: everything old enough goes; the file written 5 s ago stays (it may be being answered)
    assert prune(tmp_path, max_bytes=0, min_age_s=60, now=now) == 300
    assert [p.name for p in tmp_path.rglob("*.png")] == ["young.png"]


def test_a_folder_cap_prunes_at_most_every_few_seconds(tmp_path):
    cap = FolderCap([tmp_path], max_bytes=0, min_age_s=0, every_s=3600)
    write(tmp_path / "one.png", 10, 0)
    cap.tick()
    assert not (tmp_path / "one.png").exists()
    write(tmp_path / "two.png", 10, 0)
    cap.tick()  # within the hour: not pruned again
    assert (tmp_path / "two.png").exists()


def test_the_app_caps_its_own_folders_only():
    folders = pictures.RESULT_FOLDERS.folders
    assert pictures.PNG_DIR in folders and pictures.RESULT_FOLDERS.max_bytes == pictures.RESULT_FOLDER_CAP
    if service.OWN_GRADIO_DIR is None:  # a GRADIO_TEMP_DIR the user gave is never pruned
        assert len(folders) == 1
    else:
        assert service.OWN_GRADIO_DIR in folders and os.environ["GRADIO_TEMP_DIR"] == str(
            service.OWN_GRADIO_DIR
        )


def test_a_launched_app_bounds_its_sessions_and_cleans_gradios_cache():
    import gradio as gr

    from app_server import free_port

    with gr.Blocks() as demo:
        gr.Markdown("a page")
    service.launch(demo, "127.0.0.1", free_port(), block=False)
    try:
        assert demo.state_session_capacity == service.SESSIONS == 256
        assert demo.delete_cache == service.CACHE_CLEANING == (300, 1800)
    finally:
        demo.close()
