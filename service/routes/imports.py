"""Imports through the API (admins): the same importers as the CLI, one transaction each."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from geo.errors import InvalidInput
from geo.vocabulary import Crs
from service import importing
from service.auth import requires
from service.idempotency import OwnTransactionIdempotencyDep
from storage.access import TokenInfo

router = APIRouter(prefix="/v1/imports", tags=["imports"])

Kind = Literal["osm", "permits", "districts", "schools", "cameras"]
_FUNCS = {
    "osm": importing.import_osm,
    "permits": importing.import_permits,
    "districts": importing.import_districts,
    "schools": importing.import_schools,
    "cameras": importing.import_cameras,
}
_SUFFIXES = {
    "osm": (".osm", ".osm.gz", ".osm.bz2"),
    "permits": (".csv", ".xlsx"),
    "districts": (".geojson", ".json", ".gpkg"),
    "schools": (".csv", ".xlsx", ".geojson", ".json", ".gpkg"),
    "cameras": (".csv", ".xlsx"),
}


@router.post("/{kind}", summary="Import a file (rejected whole with every bad row, unless skip_invalid)")
async def import_file(
    request: Request,
    kind: Kind,
    token: Annotated[TokenInfo, Depends(requires("write:imports"))],
    idem: OwnTransactionIdempotencyDep,
    file: Annotated[UploadFile, File(description="the file, as for `safezone import KIND FILE`")],
    crs: Annotated[Crs | None, Form(description="for rows without a system")] = None,
    skip_invalid: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    name = Path(file.filename or "upload").name
    if not name.lower().endswith(_SUFFIXES[kind]):
        msg = f"a {kind} import takes {', '.join(_SUFFIXES[kind])} files, got {name!r}"
        raise InvalidInput(
            msg, field="file", value=name, message_zh=f"{kind} 导入须为 {'、'.join(_SUFFIXES[kind])} 文件"
        )
    with tempfile.TemporaryDirectory(prefix="safezone-import-") as tmp:
        path = Path(tmp) / name
        with open(path, "wb") as fh:
            shutil.copyfileobj(file.file, fh)
        rejects = Path(tmp) / "rejects.csv" if skip_invalid else None
        opts = importing.ImportOptions(
            created_by=f"token:{token.id}", skip_invalid=skip_invalid, rejects_path=rejects, crs=crs,
            data_dir=request.app.state.settings.data_dir,
        )  # fmt: skip
        factory = request.app.state.sessionmaker
        summary = await run_in_threadpool(_FUNCS[kind], factory, path, opts)
        out = summary.as_dict()
        if rejects is not None and rejects.exists():
            out["rejected_rows_csv"] = rejects.read_text(encoding="utf-8-sig")
            out["notes"] = [n for n in out["notes"] if "written to" not in n]
    return idem.save(out)
