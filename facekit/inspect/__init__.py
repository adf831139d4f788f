"""Looking at facekit files: ``facekit info`` and ``facekit preview``.

On a file written by ``facekit prepare``::

    from facekit.inspect import check_parts, file_info, format_info, save_preview
    print(format_info(file_info("out.h5")))
    check_parts("out.h5")["problems"]                # every part read and hashed: [] when intact
    save_preview("out.h5", "sheet.png")              # one row of faces per class
    save_preview("out.h5", "face3.png", face=3)      # the samples made from face 3
"""
from .info import EXAMPLES_PER_REASON, INFO_VERSION, check_parts, file_info, format_info
from .preview import Preview, PreviewError, render_contact_sheet, render_source_sheet, save_preview

__all__ = ["file_info", "format_info", "check_parts", "INFO_VERSION", "EXAMPLES_PER_REASON", "render_contact_sheet",
           "render_source_sheet", "save_preview", "Preview", "PreviewError"]
