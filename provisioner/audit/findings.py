"""What the audit can find: the severities, each kind of finding with its severity and title (French and English),
and a finding itself. The rules that raise them are in provisioner/audit/rules.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.errors import Message

SEVERITIES = ("info", "low", "medium", "high", "critical")

# kind -> (severity, title)
KINDS: dict[str, tuple[str, Message]] = {
    "two-teleservices": ("high", Message("Un même identifiant détient les rôles de plusieurs téléservices",
                                         "One login holds roles of several teleservices")),
    "direct-role": ("high", Message("Rôle attribué directement à l'utilisateur (hors groupes de l'adhérent)",
                                    "Role mapped directly to the user (not through the adherent's groups)")),
    "validators-missing": ("high", Message("Deux confirmations E@syPaiement mais moins de deux validateurs actifs, "
                                           "depuis trop longtemps",
                                           "Two E@syPaiement confirmations but fewer than two enabled validators, "
                                           "for too long")),
    "suspended-enabled": ("high", Message("Adhérent suspendu avec des comptes encore actifs",
                                          "Suspended adherent with enabled accounts")),
    "foreign-adherent": ("high", Message("Pouvoirs dans un autre adhérent que le sien",
                                         "Powers in an adherent other than the user's own")),
    "outside-adherent": ("medium", Message("Utilisateur rattaché à aucun adhérent",
                                           "User outside any adherent")),
    "no-delegate": ("medium", Message("Adhérent sans personne déléguée active",
                                      "Adherent without an enabled delegate")),
    "categories-uncovered": ("medium", Message("Catégories actives que ne déclare aucun utilisateur Télédéclaration",
                                               "Active categories declared by no Télédéclaration user")),
    # issue 6: Keycloak's per-adherent fine-grained admin permissions (provisioner/permissions.py)
    "delegation-missing": ("high", Message("Adhérent sans sa permission Keycloak (la personne déléguée est bloquée)",
                                           "Adherent without its Keycloak permission (its delegate is blocked)")),
    "delegation-drifted": ("high", Message("La permission Keycloak de l'adhérent ne couvre pas exactement ses groupes",
                                           "The adherent's Keycloak permission does not cover exactly its groups")),
    "permission-foreign": ("high", Message("Permission d'administration fine étrangère aux adhérents",
                                           "Fine-grained admin permission that belongs to no adherent")),
    "permission-type-wide": ("critical", Message("Permission d'administration fine sur tous les utilisateurs ou groupes",
                                                 "Fine-grained admin permission over every user or group")),
    "realm-drift": ("medium", Message("La configuration du realm diffère de realm/",
                                      "The realm's configuration differs from realm/")),
    # The live realm's configuration against absolute security rules (independent of realm/): config_findings.
    "claim-forgeable": ("critical", Message("Revendication d'adhérent (adherent, categories, confirmations "
                                            "E@syPaiement) tirée d'un attribut que la personne déléguée peut réécrire",
                                            "Adherent claim (adherent, categories, E@syPaiement confirmations) taken "
                                            "from an attribute the delegate can rewrite")),
    "delegate-role-bypass": ("critical", Message("Le rôle delegate accorde un rôle d'administration qui contourne "
                                                 "les permissions fines",
                                                 "The delegate role grants an administration role that bypasses "
                                                 "fine-grained permissions")),
    "direct-grant-public": ("high", Message("Connexion directe par mot de passe (direct grant) sur un client public "
                                            "ou un téléservice",
                                            "Direct access grants (password grant) on a public client or a "
                                            "teleservice")),
    "wildcard-redirect": ("high", Message("URI de redirection avec joker, ou flux implicite activé",
                                          "Wildcard redirect URI, or implicit flow enabled")),
    "brute-force-off": ("high", Message("Protection contre la force brute désactivée",
                                        "Brute-force protection disabled")),
    "events-off": ("high", Message("Journalisation des événements Keycloak désactivée",
                                   "Keycloak event logging disabled")),
    "public-client-no-pkce": ("medium", Message("Client public sans PKCE S256",
                                                "Public client without PKCE S256")),
    "refresh-token-reuse": ("medium", Message("Jetons de rafraîchissement réutilisables (pas de rotation)",
                                              "Reusable refresh tokens (no rotation)")),
    "offline-access-teleservice": ("medium", Message("Accès hors ligne (offline_access) offert à un téléservice",
                                                     "Offline access (offline_access) offered to a teleservice")),
    "second-factor-missing": ("high", Message("Compte à pouvoirs sans second facteur enregistré (personne déléguée, "
                                              "agent, auditeur ou validateur)",
                                              "Powerful account without an enrolled second factor (delegate, "
                                              "agent, auditor or validator)")),
    "inactive": ("low", Message("Aucune connexion depuis longtemps", "No login for a long time")),
    "dormant-soon": ("info", Message("Sera désactivé comme dormant sous peu (provisioner dormant)",
                                     "About to be disabled as dormant (provisioner dormant)")),
    "dormant-overdue": ("medium", Message("Dormant mais toujours actif : la désactivation planifiée n'a pas eu lieu",
                                          "Dormant yet enabled: the scheduled disabling did not run")),
    "review-open": ("info", Message("Revue des accès en cours", "Access review in progress")),
    "review-overdue": ("medium", Message("Revue des accès échue et non clôturée (provisioner review close)",
                                         "Access review past its deadline and not closed (provisioner review close)")),
    "adherent-terminated": ("info", Message("Adhérent en cours de résiliation", "Member being terminated")),
    "purge-overdue": ("medium", Message("Adhérent résilié dont la purge est en retard",
                                        "Terminated member whose purge is overdue")),
    "no-secret-questions": ("low", Message("Questions secrètes non renseignées", "No secret questions")),
    # Keycloak's published advisories (realm/advisories.yaml): the severity is the advisory's own.
    "keycloak-advisory": ("high", Message("Keycloak en service est touché par une faille publiée que notre "
                                          "configuration ne neutralise pas",
                                          "The running Keycloak is affected by a published advisory our "
                                          "configuration does not mitigate")),
    "keycloak-advisory-mitigated": ("info", Message("Faille publiée de cette version de Keycloak, neutralisée par "
                                                    "notre configuration",
                                                    "Published advisory of this Keycloak version, mitigated by our "
                                                    "configuration")),
    "admin-group-delegated": ("critical", Message("Groupe géré par une personne déléguée qui confère un rôle "
                                                  "d'administration du realm",
                                                  "Group a delegate manages that confers a realm administration "
                                                  "role")),
}


def severity_rank(severity: str) -> int:
    """Position of a severity in SEVERITIES; ValueError names the allowed ones."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    severity: str
    kind: str
    subject: str
    adherent: str | None
    detail: str
    # The detail in French and English, when the rule says it so itself (the others: provisioner/audit/words.py).
    said: Message | None = field(default=None, compare=False, repr=False)

    @property
    def title(self) -> Message:
        return KINDS[self.kind][1]
