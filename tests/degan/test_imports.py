from __future__ import annotations

import subprocess
import sys


class TestImportBoundary:
    def test_facekit_never_imports_torch_or_degan(self) -> None:
        code = ("import sys, facekit, facekit.store, facekit.testing; "
                "assert 'torch' not in sys.modules, 'torch'; assert 'degan' not in sys.modules, 'degan'")
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_degan_config_is_light(self) -> None:
        code = "import sys, degan.config; assert 'torch' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True)
