"""The delegate's actions on their adherent's teleservice users, each rule with its refused cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack.builders import USER_PASSWORD, login, make_user, new_user
from provisioner import secret_questions
from provisioner.adherents import set_easypaiement_confirmations
from provisioner.context import Context
from provisioner.trail import events
from provisioner.errors import NeedsConfirmation, RuleViolation, ValidationError
from provisioner.rules import Access
from provisioner.secret_questions import SecretAnswer
from provisioner.tenancy import Actor
from provisioner.users import change_access, create_user, enable_user, find_logins, get_user, list_users, set_password, set_secret_questions, unlock_user, update_details
from provisioner.teleservice_users import UserDetails, disable_user
from tests.oidc_flow import password_login

pytestmark = pytest.mark.usefixtures("password_grant_client")


@pytest.fixture(scope="module")
def delegate(adherent) -> Actor:
    return Actor.delegate(adherent)



# --- create ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("teleservice, powers, leaves", [
    ("compte-adherent", (), ["compte-adherent/utilisateur"]),
    ("eliquidation", (), ["eliquidation/utilisateur"]),
    ("easypaiement", ("ordonnateur",), ["easypaiement/ordonnateur"]),
    ("easypaiement", ("ordonnateur", "validateur"), ["easypaiement/ordonnateur", "easypaiement/validateur"]),
    ("teledeclaration", ("fichier-preetabli", "formulaire-saisie"),
     ["teledeclaration/fichier-preetabli", "teledeclaration/formulaire-saisie"]),
])
def test_create_gives_exactly_the_powers_of_one_teleservice(service_gw, services, delegate, adherent, teleservice,
                                                             powers, leaves):
    user = make_user(service_gw, services, delegate, adherent, teleservice, powers)
    kc = service_gw.user_by_username(user.login)
    assert kc.enabled and kc.attr("adherent") == adherent and kc.attr("teleservice") == teleservice
    groups = sorted(g.path for g in service_gw.user_groups(kc.id))
    assert groups == [f"/adherents/{adherent}/{leaf}" for leaf in sorted(leaves)]
    assert UPDATE_PASSWORD in service_gw.user_rep(kc.id)["requiredActions"]  # temporary password
    assert secret_questions.questions_of(services.db, kc.id) == [
        "Ville de naissance de votre père ?", "Nom de votre premier animal de compagnie ?"]
    assert secret_questions.verify(services.db, kc.id, ["  FES ", "mimi"])  # normalised: case, accents, spaces
    assert not secret_questions.verify(services.db, kc.id, ["Rabat", "mimi"])
    assert not any(k.startswith(("question", "answer", "secret")) for k in kc.attributes)


UPDATE_PASSWORD = "UPDATE_PASSWORD"


def test_teledeclaration_user_gets_type_provider_and_all_active_categories_by_default(service_gw, services,
                                                                                      delegate, adherent):
    access = Access("teledeclaration", ("fichier-preetabli",), "externe", "Fiduciaire Amal")
    user = make_user(service_gw, services, delegate, adherent, access=access)
    kc = service_gw.user_by_username(user.login)
    assert kc.attr("user_type") == "externe" and kc.attr("provider") == "Fiduciaire Amal"
    assert kc.attributes["categories"] == ("cadres", "employes", "ouvriers")
    subset = make_user(service_gw, services, delegate, adherent,
                       access=Access("teledeclaration", ("formulaire-saisie",), "interne", None, ("cadres",)))
    assert service_gw.user_by_username(subset.login).attributes["categories"] == ("cadres",)


BAD_USERS = [
    (dict(login=""), "login", "Ce champ est obligatoire."),
    (dict(login="ab"), "login", "L'identifiant doit compter 3 à 30 caractères"),
    (dict(login="Jean.Dupont"), "login", "L'identifiant doit compter 3 à 30 caractères"),
    (dict(login="12345"), "login", "commencer par une lettre"),
    (dict(login="jean dupont"), "login", "lettres minuscules, chiffres"),
    (dict(login="a" * 31), "login", "3 à 30 caractères"),
    (dict(password="abc", password_confirm="abc"), "password", "de 5 à 10 caractères (il en a 3)"),
    (dict(password="motdepasse1", password_confirm="motdepasse1"), "password", "(il en a 11)"),
    (dict(password="pass word", password_confirm="pass word"), "password", "que des lettres et des chiffres"),
    (dict(password="Pàss2026", password_confirm="Pàss2026"), "password", "que des lettres et des chiffres"),
    (dict(password="User2026", password_confirm="User2025"), "password_confirm", "ne sont pas identiques"),
    (dict(secret_answers=()), "secret_questions", "au moins deux questions secrètes"),
    (dict(secret_answers=(SecretAnswer("Ville ?", "Fès"),)), "secret_questions", "au moins deux"),
    (dict(secret_answers=(SecretAnswer("Ville ?", "Fès"), SecretAnswer("Ville ?", "Rabat"))), "secret_questions",
     "des questions différentes"),
    (dict(secret_answers=(SecretAnswer("Ville ?", "Fès"), SecretAnswer("Chien ?", "x"))), "answer2",
     "Réponse de 2 à 100 caractères."),
    (dict(access=Access("teleservice-x")), "teleservice", "Téléservice inconnu"),
    (dict(access=Access("easypaiement")), "powers", "Choisissez Ordonnateur et/ou Validateur."),
    (dict(access=Access("compte-adherent", ("validateur",))), "powers",
     "Un identifiant ne sert qu'un téléservice"),
    (dict(access=Access("easypaiement", ("ordonnateur", "fichier-preetabli"))), "powers",
     "Un identifiant ne sert qu'un téléservice"),
    (dict(access=Access("teledeclaration", (), "interne")), "powers", "Fichier préétabli et/ou Formulaire"),
    (dict(access=Access("teledeclaration", ("fichier-preetabli",))), "user_type", "« interne » ou « externe »"),
    (dict(access=Access("teledeclaration", ("fichier-preetabli",), "externe")), "provider",
     "indiquez le nom du prestataire"),
    (dict(access=Access("teledeclaration", ("fichier-preetabli",), "interne", None, ("cadres", "pilotes"))),
     "categories", "Catégorie « pilotes » non active pour cet adhérent"),
    (dict(details=UserDetails("", "Youssef", "y@atlas.ma")), "nom", "Ce champ est obligatoire."),
    (dict(details=UserDetails("El Idrissi", "", "y@atlas.ma")), "prenom", "Ce champ est obligatoire."),
    (dict(details=UserDetails("El Idrissi", "Youssef", "")), "email", "Ce champ est obligatoire."),
    (dict(details=UserDetails("El Idrissi", "Youssef", "y@")), "email", "n'est pas une adresse e-mail valide"),
    (dict(details=UserDetails("El Idrissi", "Youssef", "y@atlas.ma", "Mr")), "civilite", "« M » ou « Mme »"),
    (dict(details=UserDetails("El Idrissi", "Youssef", "y@atlas.ma", "M", "", "tel")), "telephone",
     "Numéro de téléphone invalide"),
]


@pytest.mark.parametrize("change, field, message", BAD_USERS)
def test_create_refuses_bad_input_with_a_precise_message(service_gw, services, delegate, adherent, change, field,
                                                          message):
    new = new_user("compte-adherent", **change)
    with pytest.raises(ValidationError) as exc:
        create_user(Context(service_gw, services, delegate, adherent), new)
    assert field in exc.value.errors, exc.value.errors
    assert message in exc.value.errors[field].fr and exc.value.errors[field].en
    assert service_gw.user_by_username(new.login) is None


def test_password_equal_to_the_login_is_refused(service_gw, services, delegate, adherent):
    name = login()
    with pytest.raises(ValidationError) as exc:
        create_user(Context(service_gw, services, delegate, adherent), new_user(login=name, password=name[:10],
                                                                       password_confirm=name[:10]))
    assert "password" in exc.value.errors


def test_password_rule_is_read_from_the_realm_spec(service_gw, services, delegate, adherent):
    stricter = replace(services, password_policy=replace(services.password_policy, min_length=8))
    with pytest.raises(ValidationError) as exc:
        create_user(Context(service_gw, stricter, delegate, adherent), new_user(password="Abc123", password_confirm="Abc123"))
    assert "de 8 à 10 caractères" in exc.value.errors["password"].fr


def test_a_taken_login_gets_a_clear_message_not_a_409(service_gw, services, delegate, adherent, make_adherent):
    user = make_user(service_gw, services, delegate, adherent)
    other = make_adherent()
    with pytest.raises(RuleViolation) as exc:
        make_user(service_gw, services, Actor.delegate(other), other, login=user.login)
    assert exc.value.field == "login"
    assert exc.value.message.fr == f"L'identifiant « {user.login} » est déjà utilisé : choisissez-en un autre."


def test_a_login_can_never_be_given_another_teleservices_role(service_gw, services, delegate, adherent):
    user = make_user(service_gw, services, delegate, adherent, "easypaiement", ("ordonnateur",))
    for access in (Access("teledeclaration", ("fichier-preetabli",), "interne"), Access("compte-adherent")):
        with pytest.raises(RuleViolation) as exc:
            change_access(Context(service_gw, services, delegate, adherent), user.login, access)
        assert exc.value.field == "teleservice"
    with pytest.raises(ValidationError) as exc:
        change_access(Context(service_gw, services, delegate, adherent), user.login,
                      Access("easypaiement", ("ordonnateur", "utilisateur")))
    assert "Un identifiant ne sert qu'un téléservice" in exc.value.errors["powers"].fr
    kc = service_gw.user_by_username(user.login)
    assert [g.path for g in service_gw.user_groups(kc.id)] == [f"/adherents/{adherent}/easypaiement/ordonnateur"]


# --- list, show, find ---------------------------------------------------------------------------------
def test_list_per_teleservice_and_show_and_find_a_login(service_gw, services, make_adherent, agent):
    n = make_adherent()
    me = Actor.delegate(n)
    a = make_user(service_gw, services, me, n, "easypaiement", ("validateur",))
    b = make_user(service_gw, services, me, n, "teledeclaration", ("fichier-preetabli",),
                  details=UserDetails("Tazi", "Nadia", "nadia.tazi@atlas.ma"))
    listed = list_users(Context(service_gw, services, me, n))
    assert set(listed) == {"teledeclaration", "compte-adherent", "easypaiement", "eliquidation"}
    assert [(u.login, u.access.powers) for u in listed["easypaiement"]] == [(a.login, ("validateur",))]
    assert [u.login for u in listed["teledeclaration"]] == [b.login]
    assert listed["compte-adherent"] == [] and all(u.login != n for us in listed.values() for u in us)
    assert list(list_users(Context(service_gw, services, me, n), "easypaiement")) == ["easypaiement"]
    shown = get_user(Context(service_gw, services, me, n), b.login)
    assert shown.access.user_type == "interne" and shown.details.nom == "Tazi" and not shown.locked
    assert [u.login for u in find_logins(Context(service_gw, services, me, n), "nadia")] == [b.login]
    assert [u.login for u in find_logins(Context(service_gw, services, me, n), "TAZI")] == [b.login]


# --- password, details, powers ---------------------------------------------------------------------------
def test_new_password_is_temporary(service_gw, services, delegate, adherent, settings):
    user = make_user(service_gw, services, delegate, adherent)
    kc = service_gw.user_by_username(user.login)
    service_gw.update_user(kc.id, {**service_gw.user_rep(kc.id), "requiredActions": []})
    set_password(Context(service_gw, services, delegate, adherent), user.login, "Neuf2026", "Neuf2026")
    assert service_gw.user_rep(kc.id)["requiredActions"] == [UPDATE_PASSWORD]
    resp = password_login(settings, user.login, "Neuf2026")
    assert resp.json().get("error_description") == "Account is not fully set up"  # right password, must change it
    ev = events(services.db, target=user.login, action="user.set_password")[0]
    assert ev.outcome == "ok" and "Neuf2026" not in repr(ev)


@pytest.mark.parametrize("password, confirm, field, message", [
    ("abc", "abc", "password", "de 5 à 10 caractères"),
    ("abc-def", "abc-def", "password", "que des lettres et des chiffres"),
    ("Neuf2026", "Neuf2027", "password_confirm", "ne sont pas identiques"),
])
def test_new_password_refused_before_keycloak(service_gw, services, delegate, adherent, password, confirm, field,
                                              message):
    user = make_user(service_gw, services, delegate, adherent)
    with pytest.raises(ValidationError) as exc:
        set_password(Context(service_gw, services, delegate, adherent), user.login, password, confirm)
    assert message in exc.value.errors[field].fr


def test_keycloak_stays_the_final_judge_of_passwords(service_gw, services, delegate, adherent):
    user = make_user(service_gw, services, delegate, adherent)
    with pytest.raises(RuleViolation) as exc:  # password history (3): our rule passes, Keycloak refuses
        set_password(Context(service_gw, services, delegate, adherent), user.login, USER_PASSWORD, USER_PASSWORD)
    assert exc.value.field == "password" and "déjà été utilisé" in exc.value.message.fr


def test_change_details_and_powers_and_categories(service_gw, services, delegate, adherent):
    user = make_user(service_gw, services, delegate, adherent, "teledeclaration", ("fichier-preetabli",))
    done = change_access(Context(service_gw, services, delegate, adherent), user.login,
                         Access("teledeclaration", ("formulaire-saisie",), "externe", "Fidu Conseil", ("ouvriers",)))
    assert done.access.powers == ("formulaire-saisie",)
    kc = service_gw.user_by_username(user.login)
    assert [g.path for g in service_gw.user_groups(kc.id)] == [
        f"/adherents/{adherent}/teledeclaration/formulaire-saisie"]
    assert kc.attr("provider") == "Fidu Conseil" and kc.attributes["categories"] == ("ouvriers",)
    change_access(Context(service_gw, services, delegate, adherent), user.login,
                  Access("teledeclaration", ("formulaire-saisie",), "interne", "ignored"))
    kc = service_gw.user_by_username(user.login)
    assert kc.attr("provider") is None and kc.attr("user_type") == "interne"
    updated = update_details(Context(service_gw, services, delegate, adherent), user.login,
                             UserDetails("Chraibi", "Omar", "omar@atlas.ma", "M", "Paie", "0522000000"))
    assert (updated.details.nom, updated.details.email, updated.details.fonction) == ("Chraibi", "omar@atlas.ma",
                                                                                       "Paie")
    assert service_gw.user_by_username(user.login).attr("teleservice") == "teledeclaration"
    ev = events(services.db, target=user.login, action="user.change_access")[1]
    assert ev.before["powers"] == ["fichier-preetabli"] and ev.after["powers"] == ["formulaire-saisie"]


def test_secret_questions_can_be_replaced(service_gw, services, delegate, adherent):
    user = make_user(service_gw, services, delegate, adherent)
    set_secret_questions(Context(service_gw, services, delegate, adherent), user.login,
                         (SecretAnswer("Couleur ?", "Bleu"), SecretAnswer("Plat ?", "Tajine")))
    assert secret_questions.verify(services.db, user.id, ["bleu", "TAJINE"])
    ev = events(services.db, target=user.login, action="user.set_secret_questions")[0]
    assert "Tajine" not in repr(ev) and ev.after == {"questions": ["Couleur ?", "Plat ?"]}


# --- disable, enable, unlock ------------------------------------------------------------------------------
def test_disable_ends_sessions_at_once_and_enable_restores(service_gw, services, delegate, adherent, settings):
    user = make_user(service_gw, services, delegate, adherent)
    kc = service_gw.user_by_username(user.login)
    service_gw.update_user(kc.id, {**service_gw.user_rep(kc.id), "requiredActions": []})
    assert password_login(settings, user.login, USER_PASSWORD).status_code == 200
    assert len(service_gw.user_sessions(kc.id)) == 1
    disable_user(Context(service_gw, services, delegate, adherent), user.login)
    assert service_gw.user_sessions(kc.id) == [] and not service_gw.user(kc.id).enabled
    assert password_login(settings, user.login, USER_PASSWORD).status_code != 200
    enable_user(Context(service_gw, services, delegate, adherent), user.login)
    assert password_login(settings, user.login, USER_PASSWORD).status_code == 200


def test_unlock_clears_a_brute_force_lockout(service_gw, services, delegate, adherent, settings, spec):
    user = make_user(service_gw, services, delegate, adherent)
    kc = service_gw.user_by_username(user.login)
    service_gw.update_user(kc.id, {**service_gw.user_rep(kc.id), "requiredActions": []})
    for _ in range(spec.brute_force.max_failures):
        password_login(settings, user.login, "Wrong2026")
    assert get_user(Context(service_gw, services, delegate, adherent), user.login).locked
    assert password_login(settings, user.login, USER_PASSWORD).status_code != 200
    assert unlock_user(Context(service_gw, services, delegate, adherent), user.login) is True
    assert not get_user(Context(service_gw, services, delegate, adherent), user.login).locked
    assert password_login(settings, user.login, USER_PASSWORD).status_code == 200


# --- E@syPaiement confirmations ---------------------------------------------------------------------------
def test_a_validator_still_needed_keeps_its_power_and_leaves_only_after_a_confirmation(service_gw, services,
                                                                                      make_adherent):
    """(Choosing 2 confirmations before the validators exist: tests/test_easypaiement.py.)"""
    n = make_adherent()
    me = Actor.delegate(n)
    first = make_user(service_gw, services, me, n, "easypaiement", ("ordonnateur", "validateur"))
    with pytest.raises(RuleViolation):
        set_easypaiement_confirmations(Context(service_gw, services, me, n), 3)
    second = make_user(service_gw, services, me, n, "easypaiement", ("validateur",))
    set_easypaiement_confirmations(Context(service_gw, services, me, n), 2)
    assert service_gw.group_by_path(f"/adherents/{n}").attr("easypaiement_confirmations") == "2"

    # Removing either validator's power would break the rule: refused.
    with pytest.raises(RuleViolation) as exc:
        change_access(Context(service_gw, services, me, n), second.login, Access("easypaiement", ("ordonnateur",)))
    assert "ajoutez d'abord un autre validateur" in exc.value.message.fr
    # A departing validator: disabling it asks for a confirmation first, and nothing changes until then.
    with pytest.raises(NeedsConfirmation):
        disable_user(Context(service_gw, services, me, n), first.login)
    assert service_gw.user_by_username(first.login).enabled
    # Back to one confirmation: no confirmation needed.
    set_easypaiement_confirmations(Context(service_gw, services, me, n), 1)
    disable_user(Context(service_gw, services, me, n), first.login)
    assert not service_gw.user_by_username(first.login).enabled


def test_create_killed_after_keycloaks_post_is_finished_by_a_rerun(service_gw, services, delegate, adherent):
    """A crash between the one POST and storing the answers: re-running the same form completes the user (no
    duplicate, nothing missing); a different person's form still gets 'login taken'."""
    from provisioner.teleservice_users import user_rep

    new = new_user("easypaiement", ("ordonnateur",))
    service_gw.create_user(user_rep(adherent, new, new.access.normalised((), services.catalogue)))  # the POST, then the "crash"
    kc = service_gw.user_by_username(new.login)
    assert secret_questions.questions_of(services.db, kc.id) == []
    other = replace(new, details=replace(new.details, email="someone.else@atlas.ma"))
    with pytest.raises(RuleViolation):
        create_user(Context(service_gw, services, delegate, adherent), other)
    done = create_user(Context(service_gw, services, delegate, adherent), new)
    assert done.id == kc.id and done.access.powers == ("ordonnateur",)
    assert secret_questions.verify(services.db, kc.id, ["fes", "mimi"])
    assert len(service_gw.search_users(new.login)) == 1
    with pytest.raises(RuleViolation):  # finished now: a third run is a taken login
        create_user(Context(service_gw, services, delegate, adherent), new)


def test_edit_user_undoes_the_details_when_the_new_answers_cannot_be_stored(service_gw, services, delegate, adherent,
                                                                           monkeypatch):
    """All or nothing: the one PUT of the details is undone when our database refuses the new answers."""
    from provisioner import secret_questions as sq
    from provisioner.users import QuestionChoice, edit_user
    from provisioner.teleservice_users import UserDetails

    user = make_user(service_gw, services, delegate, adherent)

    def database_down(*args, **kwargs):
        raise RuntimeError("database unavailable")
    monkeypatch.setattr(sq, "store", database_down)
    with pytest.raises(RuntimeError):
        edit_user(Context(service_gw, services, delegate, adherent), user.login,
                  UserDetails("Alami", "Sara", "sara@atlas.ma", "Mme", "DAF", "+212 522 00 00 01"),
                  (QuestionChoice("Ville ?", "", "Rabat"), QuestionChoice("", "Ma rue ?", "Zerktouni")))
    kc = service_gw.user_by_username(user.login)
    assert (kc.last_name, kc.first_name, kc.email, kc.attr("fonction")) == (
        user.details.nom, user.details.prenom, user.details.email, user.details.fonction)
    monkeypatch.undo()
    assert sq.verify(services.db, user.id, ["Fès", "Mimi"])
