"""Bulk onboarding: a CSV of teleservice users for one adherent (columns in docs/provisioner-api.md,
sample in docs/sample-users.csv). Bad rows are reported with line and reason; good rows are created; a
re-run creates only what is missing."""

from __future__ import annotations

import asyncio
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from provisioner import easypaiement, rules, secret_questions
from provisioner.context import Context
from provisioner.trail import record
from provisioner.core import Services
from provisioner.errors import Conflict, KeycloakRejected, Message, ProvisionerError
from provisioner.gateway import Gateway, User
from provisioner.rules import VALIDATEUR, Access
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import require_adherent
from provisioner.tree import adherent_state, require_active
from provisioner.teleservice_users import NewUser, UserDetails, check_new_user, user_rep

COLUMNS = ("login", "civilite", "nom", "prenom", "fonction", "email", "telephone", "password", "teleservice",
           "powers", "user_type", "provider", "categories", "question1", "answer1", "question2", "answer2",
           "question3", "answer3")
REQUIRED_COLUMNS = ("login", "nom", "prenom", "email", "password", "teleservice")
LIST_SEPARATOR = "|"   # inside a cell: powers and categories
CHUNK = 50             # users per concurrent batch: a token refreshed at 90% of its life outlasts one


@dataclass(frozen=True)
class RowError:
    line: int              # 1-based line in the file (the header is line 1)
    login: str
    field: str
    message: Message


@dataclass
class BulkReport:
    created: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _msg(fr: str, en: str) -> Message:
    return Message(fr, en)


def _header_errors(header: list[str]) -> list[RowError]:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    out = [RowError(1, "", c, _msg(f"Colonne obligatoire « {c} » absente.", f"Required column '{c}' is missing."))
           for c in missing]
    out += [RowError(1, "", c, _msg(f"Colonne inconnue « {c} » (colonnes : {', '.join(COLUMNS)}).",
                                    f"Unknown column '{c}' (columns: {', '.join(COLUMNS)})."))
            for c in unknown]
    return out


def _split(cell: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (cell or "").split(LIST_SEPARATOR) if v.strip())


def _row_to_user(row: dict[str, str]) -> NewUser:
    g = lambda k: (row.get(k) or "").strip()  # noqa: E731
    access = Access(g("teleservice"), _split(row.get("powers")), g("user_type") or None, g("provider") or None,
                    _split(row.get("categories")))
    answers = tuple(SecretAnswer(g(f"question{i}"), row.get(f"answer{i}") or "") for i in (1, 2, 3)
                    if g(f"question{i}") or (row.get(f"answer{i}") or "").strip())
    return NewUser(g("login"), UserDetails(g("nom"), g("prenom"), g("email"), g("civilite"), g("fonction"),
                                           g("telephone")), access, row.get("password") or "", None, answers)


def parse_csv(text: str) -> tuple[list[tuple[int, NewUser]], list[RowError]]:
    """Rows -> (line, NewUser) for rows that parse; RowError for rows that do not (pure).

    Comma or semicolon separated (as spreadsheets write them), UTF-8 with or without BOM."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    problems = _header_errors(header)
    if problems:
        return [], problems
    rows, errors = [], []
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append(RowError(line, (row.get("login") or "").strip(), "-", _msg(
                "Trop de valeurs sur la ligne (séparateur en trop ?).", "Too many values on the line (extra separator?).")))
            continue
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        rows.append((line, _row_to_user(row)))
    return rows, errors


def check_rows(services: Services, rows: list[tuple[int, NewUser]], categories: tuple[str, ...]
               ) -> tuple[list[tuple[int, NewUser]], list[RowError]]:
    """The same rules as create_user, row by row; a login twice in the file is refused on its second line.
    Secret questions are optional in a file (users may set them later) but, when given, follow the rules."""
    good, errors, seen = [], [], {}
    for line, new in rows:
        problems = check_new_user(services, new, categories)
        if not new.secret_answers:
            problems.pop("secret_questions", None)
        if new.login in seen:
            problems["login"] = _msg(f"Identifiant « {new.login} » déjà présent ligne {seen[new.login]}.",
                                     f"Login '{new.login}' already on line {seen[new.login]}.")
        seen.setdefault(new.login, line)
        if problems:
            field, message = next(iter(problems.items()))
            errors.append(RowError(line, new.login, field, message))
        else:
            good.append((line, new))
    return good, errors


def import_users(ctx: Context, text: str,
                 progress: Callable[[int, int], None] | None = None, concurrency: int = 8) -> BulkReport:
    """Validate every row, skip users already present (re-run), create the rest concurrently (one POST each)."""
    report = BulkReport()
    with ctx.audited("bulk.import", ctx.adherent) as entry:
        require_adherent(ctx.actor, ctx.adherent, ctx.adherent)
        state = adherent_state(ctx.gw, ctx.adherent)
        require_active(state)
        parsed, report.errors = parse_csv(text)
        good, bad = check_rows(ctx.services, parsed, state.categories)
        report.errors += bad
        todo = _skip_present(ctx.gw, ctx.services, ctx.adherent, good, report)
        _create(ctx, todo, state.categories, report, progress, concurrency)
        report.errors.sort(key=lambda e: e.line)
        entry.after = {"created": len(report.created), "already_present": len(report.already_present),
                       "errors": len(report.errors)}
    return report


def _skip_present(gw: Gateway, services: Services, adherent: str, good: list[tuple[int, NewUser]],
                  report: BulkReport) -> list[tuple[int, NewUser]]:
    """Rows whose user already exists for this adherent (an earlier, maybe interrupted, run) are not created
    again; their missing secret answers are stored now."""
    present: dict[str, User] = {u.username: u for u in gw.users_by_attribute("adherent", adherent)
                                if u.attr("adherent") == adherent}
    todo = []
    with_answers = secret_questions.users_with_questions(services.db, [u.id for u in present.values()])
    for line, new in good:
        user = present.get(new.login)
        if user is None:
            todo.append((line, new))
        elif user.attr("teleservice") != new.access.teleservice:
            report.errors.append(RowError(line, new.login, "login", rules.login_taken(new.login)))
        else:
            if new.secret_answers and user.id not in with_answers:
                secret_questions.store(services.db, user.id, list(new.secret_answers))
            report.already_present.append(new.login)
    return todo


def _create(ctx: Context, todo: list[tuple[int, NewUser]],
            categories: tuple[str, ...], report: BulkReport, progress: Callable[[int, int], None] | None,
            concurrency: int) -> None:
    if not todo:
        return
    hashes = _hash_all([new for _, new in todo])
    accesses = [new.access.normalised(categories, ctx.services.catalogue) for _, new in todo]
    reps = [user_rep(ctx.adherent, new, access) for (_, new), access in zip(todo, accesses)]
    done = 0

    def on_done(i: int, result: str | Exception) -> None:
        nonlocal done
        line, new = todo[i]
        if isinstance(result, str):
            if new.secret_answers:
                secret_questions.store(ctx.services.db, result, list(new.secret_answers), hashes[i])
            record(ctx.services.db, ctx.actor, "user.create", ctx.adherent, new.login, "ok", None,
                   {"login": new.login, **asdict(new.details), **asdict(accesses[i])}, "bulk import")
            report.created.append(new.login)
        else:
            report.errors.append(_row_error(line, new.login, result))
        done += 1
        if progress:
            progress(done, len(todo))

    # Chunks: each call takes a fresh access token (a long file outlasts one token's lifespan).
    for first in range(0, len(reps), CHUNK):
        asyncio.run(ctx.gw.create_users_concurrently(reps[first:first + CHUNK], concurrency,
                                                 lambda i, result: on_done(first + i, result)))
    if any(VALIDATEUR in a.powers for a in accesses):
        easypaiement.record(ctx.gw, ctx.adherent, ctx.automation)  # new validators may complete a 2-confirmation adherent


def _hash_all(users: list[NewUser]) -> list[list[str]]:
    """argon2 of every answer, on all cores (argon2 releases the GIL)."""
    with ThreadPoolExecutor() as pool:
        return list(pool.map(lambda u: [secret_questions.hash_answer(a.answer) for a in u.secret_answers], users))


def _row_error(line: int, login: str, exc: Exception) -> RowError:
    if isinstance(exc, Conflict):
        return RowError(line, login, "login", rules.login_taken(login))
    if isinstance(exc, KeycloakRejected):
        return RowError(line, login, "password" if "assword" in str(exc) else "-",
                        _msg(f"Refusé par Keycloak : {exc}", f"Refused by Keycloak: {exc}"))
    text = str(exc) if isinstance(exc, ProvisionerError) else repr(exc)
    return RowError(line, login, "-", _msg(f"Erreur : {text}", f"Error: {text}"))
