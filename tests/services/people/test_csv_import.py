"""Bulk CSV import: a dry run lists every problem by line; nothing is imported until clean."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from learnloop.errors import InvalidInput
from learnloop.services import auth
from learnloop.services.auth import create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import csv_import, provisioning, teams
from learnloop.store.models import User

PASSWORD = "violet-harbour-57-lantern"


@pytest.fixture
def admin(ctx: AppContext) -> auth.CurrentUser:
    with ctx.session() as session:
        org = create_organisation(session, "Acme")
        create_user(
            session, org_id=org.id, email="admin@acme.example", name="Admin", password=PASSWORD, role="admin"
        )
        create_user(session, org_id=org.id, email="taken@acme.example", name="Taken", password=PASSWORD)
    user = auth.login(ctx, email="admin@acme.example", password=PASSWORD).user
    teams.create_team(ctx, user, "Blue")
    return user


def _count(ctx: AppContext) -> int:
    with ctx.session() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_a_bad_file_lists_every_problem_by_line_and_imports_nothing(ctx: AppContext, admin) -> None:  # type: ignore[no-untyped-def]
    before = _count(ctx)
    data = (
        b"email,name,role,team,manager_email\n"
        b"ok@acme.example,Ok Person,learner,Blue,\n"  # line 2: fine
        b"not-an-email,Bad,learner,,\n"  # 3
        b"OK@acme.example,Twice,learner,,\n"  # 4: duplicate of line 2
        b"new@acme.example,New,emperor,,\n"  # 5: unknown role
        b"red@acme.example,Red,learner,Red,\n"  # 6: unknown team
        b"taken@acme.example,Taken,learner,,\n"  # 7: account exists
        b"short@acme.example,Short\n"  # 8: too few fields
        b"m@acme.example,M,learner,,ok@acme.example\n"  # 9: the manager is a learner
        b"n@acme.example,N,learner,,nobody@acme.example\n"  # 10: unknown manager
    )
    report = csv_import.import_csv(ctx, admin, data, dry_run=True)
    lines = [p.split(":")[0] for p in report.problems]
    assert lines == [f"line {n}" for n in (3, 4, 5, 6, 7, 8, 9, 10)], report.problems
    assert "duplicate" not in report.problems[1] and "line 2" in report.problems[1]
    with pytest.raises(InvalidInput) as refused:
        csv_import.import_csv(ctx, admin, data, dry_run=False)
    assert refused.value.details == report.problems
    assert _count(ctx) == before


def test_wrong_encoding_and_header_are_clear(ctx: AppContext, admin) -> None:  # type: ignore[no-untyped-def]
    latin1 = "email,name\nzoe@acme.example,Zoë\n".encode("latin-1")
    with pytest.raises(InvalidInput, match="UTF-8") as refused:
        csv_import.import_csv(ctx, admin, latin1, dry_run=True)
    assert refused.value.details == ["line 2: not UTF-8"]
    with pytest.raises(InvalidInput, match="missing columns name"):
        csv_import.import_csv(ctx, admin, b"email,nom\nx@acme.example,X\n", dry_run=True)
    with pytest.raises(InvalidInput, match="empty"):
        csv_import.import_csv(ctx, admin, b"", dry_run=True)
    too_many = "email,name\n" + "".join(
        f"p{i}@acme.example,P\n" for i in range(csv_import.MAX_IMPORT_ROWS + 1)
    )
    with pytest.raises(InvalidInput, match="split it"):
        csv_import.import_csv(ctx, admin, too_many.encode(), dry_run=True)


def test_a_clean_file_of_1000_people_imports_in_one_go(ctx: AppContext, admin) -> None:  # type: ignore[no-untyped-def]
    rows = ["email,name,role,team,manager_email", "lead@acme.example,Lea Lead,manager,Blue,"]
    rows += [f"p{i:04d}@acme.example,Person {i},learner,blue,lead@acme.example" for i in range(999)]
    data = ("\ufeff" + "\n".join(rows) + "\n").encode()  # a BOM, as spreadsheets write it
    check = csv_import.import_csv(ctx, admin, data, dry_run=True)
    assert check.problems == [] and check.rows == 1000 and check.created == 0
    before = _count(ctx)
    done = csv_import.import_csv(ctx, admin, data, dry_run=False)
    assert done.created == 1000 and _count(ctx) == before + 1000
    page = provisioning.search_members(ctx, admin, q="p0042@")
    member = page.members[0]
    assert member.team == "Blue" and member.manager == "Lea Lead" and member.role == "learner"
    # imported people have no password until they accept an invitation or use single sign-on
    with pytest.raises(Exception, match="Wrong email or password"):
        auth.login(ctx, email="p0042@acme.example", password=PASSWORD)
    # importing the same file again is refused whole
    again = csv_import.import_csv(ctx, admin, data, dry_run=True)
    assert len(again.problems) == 1000


def test_only_admins_import(ctx: AppContext, admin) -> None:  # type: ignore[no-untyped-def]
    learner = auth.login(ctx, email="taken@acme.example", password=PASSWORD).user
    with pytest.raises(Exception, match="role"):
        csv_import.import_csv(ctx, learner, b"email,name\n", dry_run=True)
