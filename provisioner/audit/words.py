"""The security report in words, for the portal's pages (French first, English when chosen): severities, what each
finding says, the drift and the notes. The report itself (provisioner/audit/report.py) keeps its codes and its
English details: the CLI, the CSV and JSON exports and the machines reading them rely on them. Here each detail the
rules write is read back into words; one this table does not know yet is said with its finding's title only, never
shown in English on a French page (tests/test_audit_words.py checks every rule's detail has words)."""

from __future__ import annotations

import re
from datetime import date
from typing import Callable, Mapping

from provisioner.errors import Message as M
from provisioner.rules import category_label, power_label
from provisioner.tenancy import AGENT, AUDITOR, DELEGATE
from provisioner.trail_words import ROLES

SEVERITIES = {"critical": M("critique", "critical"), "high": M("élevée", "high"), "medium": M("moyenne", "medium"),
              "low": M("faible", "low"), "info": M("information", "information")}
REALM_ROLES = {role: ROLES[role] for role in (DELEGATE, AGENT, AUDITOR)}  # in the journals' words
CREDENTIALS = {"password": M("mot de passe", "password"), "otp": M("application d'authentification", "authenticator"),
               "webauthn": M("clé de sécurité", "security key"), "none": M("aucun", "none")}
CHANGES = {"+": M("à créer", "to create"), "~": M("à modifier", "to update"), "-": M("à supprimer", "to delete")}
OBJECTS = {"realm": M("realm", "realm"), "client": M("client", "client"), "builtin-client": M("client intégré",
           "built-in client"), "realm-role": M("rôle du realm", "realm role"), "client-role": M("rôle de client",
           "client role"), "mapper": M("mapper", "mapper"), "flow": M("flux d'authentification",
           "authentication flow"), "flow-binding": M("flux de connexion du realm", "realm's login flow"),
           "user-profile-attribute": M("attribut du profil utilisateur", "user profile attribute"),
           "group": M("groupe", "group"), "service-account-roles": M("rôles du compte de service",
           "service account roles")}
# Findings whose detail is technical (Keycloak's permissions): said by a sentence of their own.
BY_KIND = {
    "delegation-missing": M("la personne déléguée ne peut gérer aucun utilisateur de l'adhérent tant que sa permission "
                            "n'est pas rétablie", "the delegate can manage none of the member's users until its "
                            "permission is restored"),
    "delegation-drifted": M("la permission ne correspond plus exactement aux groupes de l'adhérent",
                            "the permission no longer matches the member's groups exactly"),
    "permission-foreign": M("permission qui n'appartient à aucun adhérent : là où elle recoupe une permission "
                            "d'adhérent, les personnes déléguées sont refusées ou trop autorisées",
                            "a permission that belongs to no member: where it overlaps a member's, delegates are "
                            "refused or allowed too much"),
    "permission-type-wide": M("permission sans ressource : elle vaut pour tout le realm",
                              "a permission without resources: it applies to the whole realm"),
}

Names = Mapping[str, str]   # teleservice client id -> its name (realm/'s)


def severity(code: str) -> M:
    return SEVERITIES.get(code, M(code, code))


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


def _held(roles: str, names: Names) -> M:
    """"easypaiement:validateur, realm:delegate" in words: E@syPaiement (validateur), personne déléguée."""
    said = []
    for role in (r.strip() for r in roles.split(",") if r.strip()):
        owner, _, name = role.partition(":")
        if owner == "realm" and name in REALM_ROLES:
            said.append(REALM_ROLES[name])
        elif owner == "realm-management":
            said.append(M(f"administration du realm ({name})", f"realm administration ({name})"))
        else:
            power = power_label(name)
            said.append(M(f"{names.get(owner, owner)} ({power.fr})", f"{names.get(owner, owner)} ({power.en})"))
    return M(", ".join(s.fr for s in said), ", ".join(s.en for s in said))


def _categories(codes: str) -> M:
    said = [category_label(c.strip()) for c in codes.split(",") if c.strip()]
    return M(", ".join(s.fr for s in said), ", ".join(s.en for s in said))


def _credentials(types: str) -> M:
    said = [CREDENTIALS.get(t.strip(), M(t.strip(), t.strip())) for t in types.split(",") if t.strip()]
    return M(", ".join(s.fr for s in said), ", ".join(s.en for s in said))


def _none(value: str, fr: str = "aucun") -> str:
    return fr if value == "none" else value


Rule = tuple[str, Callable[[re.Match, Names], M]]
DETAILS: dict[str, list[Rule]] = {
    "dormant-overdue": [(r"no login since (\S+); dormant since (\S+) \((\d+) days\)", lambda m, n: M(
        f"aucune connexion depuis le {_day(m[1])} ; dormant depuis le {_day(m[2])} ({m[3]} jours)",
        f"no login since {m[1]}; dormant since {m[2]} ({m[3]} days)"))],
    "dormant-soon": [(r"no login since (\S+); disabled from (\S+) unless it logs in", lambda m, n: M(
        f"aucune connexion depuis le {_day(m[1])} ; désactivé le {_day(m[2])} s'il ne se connecte pas d'ici là",
        f"no login since {m[1]}; disabled on {m[2]} unless it logs in"))],
    "review-open": [(r"'(.*)', deadline (\S+): (\d+)/(\d+) users reviewed \((\d+)%\); adherents with users to "
                     r"review: (.*?)(?: \(\+(\d+) more\))?$", lambda m, n: M(
        f"« {m[1]} », échéance le {_day(m[2])} : {m[3]} utilisateur(s) revu(s) sur {m[4]} ({m[5]} %) ; adhérents "
        f"ayant encore des utilisateurs à revoir : {_none(m[6])}" + (f" (et {m[7]} autres)" if m[7] else ""),
        f"'{m[1]}', deadline {m[2]}: {m[3]}/{m[4]} users reviewed ({m[5]}%); members with users to review: "
        f"{m[6]}" + (f" (+{m[7]} more)" if m[7] else "")))],
    "adherent-terminated": [(r"terminated (\S+); reversible until, then purged from, (\S+)", lambda m, n: M(
        f"résilié le {_day(m[1])} ; annulable jusqu'au {_day(m[2])}, purgé ensuite",
        f"terminated on {m[1]}; reversible until {m[2]}, purged from then"))],
    "two-teleservices": [(r"holds (.*)", lambda m, n: M(f"pouvoirs : {_held(m[1], n).fr}",
                                                        f"powers: {_held(m[1], n).en}"))],
    "direct-role": [(r"(\S+) mapped to the user directly", lambda m, n: M(
        f"{_held(m[1], n).fr} attribué directement à l'utilisateur", f"{_held(m[1], n).en} mapped to the user"))],
    "foreign-adherent": [(r"adherent (\S+) but powers in (.*)", lambda m, n: M(
        f"adhérent {m[1]}, mais des pouvoirs chez {m[2]}", f"member {m[1]}, but powers in {m[2]}"))],
    "outside-adherent": [(r"in no adherent's group \(adherent attribute: (.*)\)", lambda m, n: M(
        f"dans aucun groupe d'adhérent (adhérent indiqué sur le compte : {_none(m[1])})",
        f"in no member's group (member named on the account: {m[1]})"))],
    "inactive": [(r"last login (\S+); threshold (\d+) days", lambda m, n: M(
        f"dernière connexion le {_day(m[1])} ; seuil : {m[2]} jours", f"last login {m[1]}; threshold {m[2]} days")),
                 (r"never logged in \(created (\S+)\); threshold (\d+) days", lambda m, n: M(
        f"jamais connecté (créé le {_day(m[1])}) ; seuil : {m[2]} jours",
        f"never logged in (created {m[1]}); threshold {m[2]} days"))],
    "no-secret-questions": [(r"no secret questions stored", lambda m, n: M(
        "aucune question secrète enregistrée", "no secret questions stored"))],
    "second-factor-missing": [(r"holds (.*); credentials: (.*) \(enrols at its next login\)", lambda m, n: M(
        f"pouvoirs : {_held(m[1], n).fr} ; moyens de connexion : {_credentials(m[2]).fr} (un second facteur lui sera "
        "demandé à sa prochaine connexion)",
        f"holds {_held(m[1], n).en}; credentials: {_credentials(m[2]).en} (asked for a second factor at its next "
        "login)"))],
    "suspended-enabled": [(r"(\d+) enabled: (.*)", lambda m, n: M(f"{m[1]} compte(s) encore actif(s) : {m[2]}",
                                                                  f"{m[1]} account(s) still enabled: {m[2]}"))],
    "no-delegate": [(r"no enabled member of /delegates/(\S+)", lambda m, n: M(
        "aucune personne déléguée active", "no enabled delegate"))],
    "categories-uncovered": [(r"no enabled Télédéclaration user declares (.*)", lambda m, n: M(
        f"aucun utilisateur Télédéclaration actif ne déclare : {_categories(m[1]).fr}",
        f"no enabled Télédéclaration user declares: {_categories(m[1]).en}"))],
    "validators-missing": [(r"(\d+) enabled validator\(s\) for 2 confirmations; since: not recorded", lambda m, n: M(
        f"{m[1]} validateur(s) actif(s) pour 2 confirmations ; depuis : non enregistré",
        f"{m[1]} enabled validator(s) for 2 confirmations; since: not recorded")),
                           (r"(\d+) enabled validator\(s\) for 2 confirmations since (\S+) \((\d+) days; threshold "
                            r"(\d+) days\)", lambda m, n: M(
        f"{m[1]} validateur(s) actif(s) pour 2 confirmations depuis le {_day(m[2])} ({m[3]} jours ; seuil : "
        f"{m[4]} jours)", f"{m[1]} enabled validator(s) for 2 confirmations since {m[2]} ({m[3]} days; threshold "
        f"{m[4]} days)"))],
    "realm-drift": [(r"([+~-]) (\S+) (.*)", lambda m, n: M(
        f"{OBJECTS.get(m[2], M(m[2], m[2])).fr} {m[3]} {CHANGES[m[1]].fr} pour suivre realm/",
        f"{OBJECTS.get(m[2], M(m[2], m[2])).en} {m[3]} {CHANGES[m[1]].en} to follow realm/"))],
    "brute-force-off": [(r"bruteForceProtected is false.*", lambda m, n: M(
        "« bruteForceProtected » désactivé : les mots de passe de 5 à 10 caractères peuvent être devinés sans "
        "blocage", "'bruteForceProtected' off: 5-10 character passwords can be guessed without lockout"))],
    "events-off": [(r"(.*) false: logins or admin changes are not recorded", lambda m, n: M(
        f"« {m[1].replace(' and ', ' » et « ')} » désactivé(s) : connexions ou modifications d'administration non "
        "enregistrées", f"'{m[1]}' off: logins or administration changes are not recorded"))],
    "refresh-token-reuse": [(r"revokeRefreshToken (\S+), refreshTokenMaxReuse (\d+):.*", lambda m, n: M(
        f"« revokeRefreshToken » {'activé' if m[1] == 'true' else 'désactivé'}, « refreshTokenMaxReuse » {m[2]} : "
        "un jeton de rafraîchissement volé reste utilisable",
        f"'revokeRefreshToken' {m[1]}, 'refreshTokenMaxReuse' {m[2]}: a stolen refresh token stays usable"))],
    "delegate-role-bypass": [(r"grants realm-management (.*): every delegate.*", lambda m, n: M(
        f"accorde l'administration du realm ({m[1]}) : chaque personne déléguée échappe aux permissions de son "
        "adhérent", f"grants realm administration ({m[1]}): every delegate escapes its member's permissions"))],
    "claim-forgeable": [(r"claim (\S+) from mapper (.*) \((\S+)\)(?: of client scope (\S+))?, not .*", lambda m, n: M(
        f"revendication « {m[1]} » donnée par le mapper « {m[2]} » ({m[3]})"
        + (f" de la portée « {m[4]} »" if m[4] else "") + " : une personne déléguée peut la réécrire",
        f"claim '{m[1]}' from mapper '{m[2]}' ({m[3]})" + (f" of client scope '{m[4]}'" if m[4] else "")
        + ": a delegate can rewrite it"))],
    "direct-grant-public": [(r"(public client|teleservice) with directAccessGrantsEnabled.*", lambda m, n: M(
        f"{'client public' if m[1] == 'public client' else 'téléservice'} avec « directAccessGrantsEnabled » : les "
        "mots de passe lui sont envoyés directement, hors de la page de connexion",
        f"{m[1]} with 'directAccessGrantsEnabled': passwords are sent to it directly, outside the login page"))],
    "public-client-no-pkce": [(r"public client with the standard flow and pkce.code.challenge.method (\S+):.*",
                               lambda m, n: M(
        f"client public sans PKCE S256 (« pkce.code.challenge.method » : {'absent' if m[1] == 'unset' else m[1]}) : "
        "un code intercepté peut être échangé", f"public client without PKCE S256 ({m[1]}): an intercepted code can "
        "be exchanged"))],
    "offline-access-teleservice": [(r"offline_access among its (.*) client scopes.*", lambda m, n: M(
        "l'accès hors ligne figure parmi ses portées : ses jetons hors ligne survivent à la session",
        f"'offline_access' among its {m[1]} scopes: offline tokens outlive the session"))],
    "wildcard-redirect": [(r"redirect URI (.*)", lambda m, n: M(f"URI de redirection avec joker : {m[1]}",
                                                                f"wildcard redirect URI: {m[1]}")),
                          (r"implicitFlowEnabled.*", lambda m, n: M(
        "flux implicite activé : les jetons passent dans l'URI de redirection",
        "implicit flow enabled: tokens travel in the redirect URI"))],
}
DETAILS["review-overdue"] = DETAILS["review-open"]
DETAILS["purge-overdue"] = DETAILS["adherent-terminated"]
COMPILED = {kind: [(re.compile(p + "$"), f) for p, f in rules] for kind, rules in DETAILS.items()}


def detail(kind: str, text: str, names: Names, said: M | None = None) -> M | None:
    """A finding's detail in words: as its rule said it (``said``), else read back from its text; its kind's own
    sentence for the technical ones; None when unknown."""
    if said is not None:
        return said
    for pattern, words in COMPILED.get(kind, ()):
        found = pattern.match(text)
        if found:
            return words(found, names)
    return BY_KIND.get(kind)


def subject(kind: str, text: str, names: Names | None = None) -> M | str:
    """What the finding is about: a login, a numéro, a client as is; a teleservice by its name; an access review by
    its number."""
    found = re.fullmatch(r"review (\d+)", text) if kind.startswith("review-") else None
    if found:
        return M(f"revue des accès n° {found[1]}", f"access review no. {found[1]}")
    return (names or {}).get(text, text)


NOTES: list[tuple[re.Pattern, Callable[[re.Match], M]]] = [
    (re.compile(r"computed: (\d+) difference\(s\) with realm/"), lambda m: M(
        f"calculée : {m[1]} différence(s) avec realm/", f"computed: {m[1]} difference(s) with realm/")),
    (re.compile(r"not computed \(--no-drift\)"), lambda m: M("non calculée", "not computed")),
    (re.compile(r"not computed: .*"), lambda m: M("non calculée : ce compte en lecture seule ne peut pas lire toute "
                                                  "la configuration", "not computed: this read-only account may not "
                                                  "read the whole configuration")),
    (re.compile(r"Realm configuration not checked.*"), lambda m: M(
        "Configuration du realm non vérifiée : ce compte ne peut pas la lire.",
        "Realm configuration not checked: this account may not read it.")),
    (re.compile(r"Login events are kept (\d+) days.*"), lambda m: M(
        f"Les connexions sont gardées {m[1]} jours : « inactif » ne voit pas celles qui sont plus anciennes.",
        f"Logins are kept {m[1]} days: 'inactive' cannot see older ones.")),
    (re.compile(r"Keycloak advisories not checked.*"), lambda m: M(
        "Failles publiées de Keycloak non vérifiées : ce compte ne peut pas lire la configuration qu'elles demandent.",
        "Keycloak's published advisories not checked: this account may not read what they need.")),
    (re.compile(r"Second factors not checked.*"), lambda m: M(
        "Seconds facteurs non vérifiés : l'extension Keycloak installée ne liste pas les moyens de connexion.",
        "Second factors not checked: the installed Keycloak extension does not list credentials.")),
]


def note(text: str) -> M:
    """The drift's state or a note of the report, in words (a note unknown here: that it exists, not its text)."""
    for pattern, words in NOTES:
        found = pattern.fullmatch(text)
        if found:
            return words(found)
    return M("Remarque technique : voir le rapport téléchargé.", "Technical note: see the downloaded report.")
