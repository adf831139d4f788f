import cv2
import numpy as np
import pytest
from PIL import Image

from facekit.errors import ImageReadError
from facekit.imageio import read_image, read_video_frames, to_gray, to_rgb, video_frame_count


class TestReadImage:
    def test_rgb_and_gray(self, tmp_path):
        img = np.zeros((10, 12, 3), np.uint8)
        img[..., 0] = 255                                    # red in RGB
        cv2.imwrite(str(tmp_path / "r.png"), img[..., ::-1])
        rgb = read_image(tmp_path / "r.png")
        assert rgb.shape == (10, 12, 3) and rgb[0, 0].tolist() == [255, 0, 0]
        assert read_image(tmp_path / "r.png", grayscale=True).shape == (10, 12)

    def test_palette_tiff(self, tmp_path):
        """JAFFE ships palette ('P') TIFFs; they decode to grey levels."""
        im = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).convert("P")
        im.save(tmp_path / "p.tiff")
        g = read_image(tmp_path / "p.tiff", grayscale=True)
        assert g.shape == (16, 16) and g.std() > 50

    def test_16_bit_becomes_8_bit(self, tmp_path):
        cv2.imwrite(str(tmp_path / "d.png"), (np.arange(100, dtype=np.uint16) * 600).reshape(10, 10))
        g = read_image(tmp_path / "d.png", grayscale=True)
        assert g.dtype == np.uint8 and g.max() == 59400 >> 8

    @pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not an image at all", "cannot be decoded"),
                                                (b"\x89PNG\r\n\x1a\n\x00\x00", "cannot be decoded")])
    def test_bad_files_name_path_and_reason(self, tmp_path, content, reason):
        p = tmp_path / "bad.png"
        p.write_bytes(content)
        with pytest.raises(ImageReadError, match=reason) as err:
            read_image(p)
        assert str(p) in str(err.value)

    def test_truncated_jpeg(self, tmp_path):
        ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        p = tmp_path / "t.jpg"
        p.write_bytes(buf.tobytes()[:200])
        with pytest.raises(ImageReadError):
            read_image(p)

    def test_missing_and_directory(self, tmp_path):
        with pytest.raises(ImageReadError, match="does not exist"):
            read_image(tmp_path / "none.png")
        with pytest.raises(ImageReadError, match="directory"):
            read_image(tmp_path)


def _png_header_only(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


class TestLimits:
    """Item 13 of issue 24: too many pixels is a reject decided from the header."""

    @pytest.mark.parametrize("w,h,size", [(8000, 7500, "8000x7500, 60.0 megapixels"),
                                          (100_000, 100_000, "100000x100000, 10000.0 megapixels")])
    def test_refused_before_decoding(self, tmp_path, monkeypatch, w, h, size):
        p = tmp_path / "big.png"
        p.write_bytes(_png_header_only(w, h))

        def no_decoding(*a, **k):
            raise AssertionError("decoded although the header says it is too large")
        monkeypatch.setattr(cv2, "imdecode", no_decoding)
        with pytest.raises(ImageReadError) as err:
            read_image(p)
        assert str(err.value) == f"{p}: image is too large ({size}; the limit is 50 megapixels, see --max-pixels)"

    def test_limit_is_adjustable(self, tmp_path):
        p = tmp_path / "x.png"
        cv2.imwrite(str(p), np.zeros((30, 40), np.uint8))
        assert read_image(p, max_pixels=1200).shape == (30, 40, 3)
        with pytest.raises(ImageReadError, match="40x30, 0.0 megapixels; the limit is 0.001199"):
            read_image(p, max_pixels=1199)
        assert read_image(p, max_pixels=None).shape == (30, 40, 3)

    def test_video_frame_size_is_checked(self, tmp_path):
        p = tmp_path / "v.avi"
        w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
        for _ in range(3):
            w.write(np.zeros((48, 64, 3), np.uint8))
        w.release()
        with pytest.raises(ImageReadError, match="video frame is too large .64x48"):
            read_video_frames(p, [0], max_pixels=1000)
        assert len(read_video_frames(p, [0, 2], max_pixels=64 * 48)) == 2


class TestHeaderSize:
    """The pixel limit's own header reader (PNG, JPEG, TIFF, BMP) agrees with Pillow."""

    @pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}),
                                        ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}), ("BMP", {})])
    @pytest.mark.parametrize("w,h", [(1, 1), (640, 490), (3, 900), (900, 3)])
    def test_agrees_with_pillow(self, fmt, kw, w, h):
        import io
        from facekit.imageio import _quick_size
        bio = io.BytesIO()
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(bio, fmt, **kw)
        assert _quick_size(bio.getvalue()) == (w, h)

    def test_jpeg_with_exif_and_big_endian_tiff(self, tmp_path):
        import io
        import struct
        from facekit.imageio import _quick_size
        exif = Image.Exif()
        exif[0x0112] = 6
        bio = io.BytesIO()
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(bio, "JPEG", exif=exif)
        assert _quick_size(bio.getvalue()) == (40, 30)
        ifd = struct.pack(">H", 2) + struct.pack(">HHIHH", 256, 3, 1, 40, 0) + struct.pack(">HHII", 257, 4, 1, 30)
        assert _quick_size(b"MM\x00*" + struct.pack(">I", 8) + ifd + b"\x00" * 4) == (40, 30)

    def test_unknown_or_broken_headers_fall_back(self):
        from facekit.imageio import _quick_size
        assert _quick_size(b"GIF89a....") is None
        assert _quick_size(b"\xff\xd8\xff\xe0\x00") is None


class TestUnreadable:
    def test_no_read_permission_is_an_image_read_error(self, tmp_path, unprivileged):
        """Item 2 of issue 24 (run unprivileged: root reads any file)."""
        p = unprivileged.dir / "x.png"
        cv2.imwrite(str(p), np.zeros((30, 40), np.uint8))
        p.chmod(0)
        r = unprivileged.python("from facekit.imageio import read_image\nfrom facekit.errors import ImageReadError\n"
                                f"try:\n    read_image({str(p)!r})\nexcept ImageReadError as e:\n    print(e)")
        assert r.stdout.strip() == f"{p}: cannot be read (Permission denied)", r.stderr


class TestVideo:
    @pytest.fixture
    def video(self, tmp_path):
        p = tmp_path / "v.avi"
        w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
        for i in range(7):
            w.write(np.full((24, 32, 3), i * 30, np.uint8))
        w.release()
        return p

    def test_count_and_frames(self, video):
        assert video_frame_count(video) == 7
        frames = read_video_frames(video, [5, 1], grayscale=True)
        assert [int(round(f.mean() / 30)) for f in frames] == [5, 1]

    def test_colour_frames_are_rgb(self, tmp_path):
        p = tmp_path / "red.avi"
        w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
        for _ in range(3):
            w.write(np.dstack([np.zeros((24, 32), np.uint8)] * 2 + [np.full((24, 32), 220, np.uint8)]))  # BGR red
        w.release()
        (frame,) = read_video_frames(p, [1])
        assert frame.shape == (24, 32, 3) and frame.flags.c_contiguous
        r, g, b = frame.reshape(-1, 3).mean(0)
        assert r > 150 and g < 60 and b < 60

    def test_frame_past_end(self, video):
        with pytest.raises(ImageReadError, match="ends before frame 9"):
            read_video_frames(video, [9])

    def test_not_a_video(self, tmp_path):
        p = tmp_path / "x.avi"
        p.write_bytes(b"junk" * 100)
        with pytest.raises(ImageReadError):
            video_frame_count(p)


class TestColourConversion:
    def test_to_rgb_and_gray(self):
        g = np.zeros((4, 4), np.uint8)
        assert to_rgb(g).shape == (4, 4, 3)
        assert to_rgb(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)
        assert to_gray(to_rgb(g)).shape == (4, 4)
        with pytest.raises(ValueError):
            to_rgb(np.zeros((4, 4, 2), np.uint8))
