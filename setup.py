"""Puts the emotion model inside the wheel, so an installed Moodbox needs no source tree.

The model and its metadata stay in models/ (training and conversion write them there); a normal, non-editable
build copies both into the package as device/assets/model/, where `[emotion] model` finds them when there is
no checkout beside the code (device/config.py). An editable install keeps reading models/ in the checkout.
Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODEL_FILES = ("emotion_vgg16_int8.tflite", "emotion_vgg16_int8.json")


class BuildWithModel(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "device" / "assets" / "model"
        dest.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            src = Path("models") / name
            if not src.is_file():
                raise SystemExit(f"{src} is missing: the package needs the model; restore it with git or convert one")
            self.copy_file(str(src), str(dest / name))


setup(cmdclass={"build_py": BuildWithModel})
