"""Editing schools, campuses and gates; each answer lists the findings the edit changes.

The latest scan is patched in the same transaction (``appeared`` findings are added and warn their school,
``disappeared`` ones are removed), so ``GET /v1/findings`` stays the city as it is now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from service import school_edits as edits
from service.auth import requires
from service.deps import SessionDep
from service.idempotency import IdempotencyDep

router = APIRouter(tags=["schools"], dependencies=[Depends(requires("write:schools"))])


def _judge(request: Request) -> edits.Reevaluator:
    return edits.Reevaluator(request.app.state.rules, request.app.state.settings)


JudgeDep = Annotated[edits.Reevaluator, Depends(_judge)]


@router.post("/v1/schools", status_code=201, summary="Add a school with its campuses and gates")
def create_school(
    body: edits.SchoolCreate, session: SessionDep, judge: JudgeDep, idem: IdempotencyDep
) -> dict[str, Any]:
    return idem.save(edits.create_school(session, body, judge), status=201)


@router.put("/v1/schools/{school_id}", summary="Change a school's fields (levels, dates, accuracy, head-counts …)")
def update_school(school_id: int, body: edits.SchoolUpdate, session: SessionDep, judge: JudgeDep) -> dict[str, Any]:
    return edits.update_school(session, school_id, body, judge)


@router.put("/v1/campuses/{campus_id}", summary="Change a campus's outline, name or accuracy")
def update_campus(campus_id: int, body: edits.CampusUpdate, session: SessionDep, judge: JudgeDep) -> dict[str, Any]:
    return edits.update_campus(session, campus_id, body, judge)


@router.post("/v1/campuses/{campus_id}/gates", status_code=201, summary="Add a gate to a campus")
def add_gate(
    campus_id: int, body: edits.GateCreateRequest, session: SessionDep, judge: JudgeDep, idem: IdempotencyDep
) -> dict[str, Any]:
    return idem.save(edits.add_gate(session, campus_id, body, judge), status=201)


@router.put("/v1/gates/{gate_id}", summary="Move a gate, open or close it")
def update_gate(gate_id: int, body: edits.GateUpdate, session: SessionDep, judge: JudgeDep) -> dict[str, Any]:
    return edits.update_gate(session, gate_id, body, judge)
