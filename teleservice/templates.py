"""The reference app's pages (French first, English second). Inline: the app is a reference, not a product."""

PAGE = """<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><title>{{ cfg.name }} — CIMR</title>
<style>body{font-family:sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
dt{font-weight:bold}small{color:#555}.err{color:#a00}.ok{color:#060}</style></head>
<body>
<header><h1>{{ cfg.name }}</h1><p><small>Téléservice de référence CIMR / CIMR reference teleservice</small></p></header>
<main>
{% if message %}
  <p class="ok" role="status" id="message">{{ message.fr }}<br><small lang="en">{{ message.en }}</small></p>
  <p><a href="{{ url_for('teleservice.home') }}">Retour / Back</a></p>
{% elif error %}
  <p class="err" role="alert">{{ error.fr }}<br><small lang="en">{{ error.en }}</small></p>
  <p><a href="{{ url_for('teleservice.home') }}">Retour / Back</a></p>
{% elif me %}
  <h2>Vous êtes connecté(e) <small lang="en">/ You are logged in</small></h2>
  <dl>
    <dt>Utilisateur / User</dt><dd id="username">{{ me.username }}</dd>
    <dt>Nom / Name</dt><dd>{{ me.name }}</dd>
    <dt>Numéro d'adhérent / Member number</dt><dd id="adherent">{{ me.adherent or "—" }}</dd>
    <dt>Rôles / Roles</dt><dd id="roles">{% for r in me.roles %}<code>{{ r }}</code> ({{ labels[loop.index0] }}){% if not loop.last %}, {% endif %}{% endfor %}</dd>
    {% if cfg.client_id == "teledeclaration" %}
    <dt>Type d'utilisateur / User type</dt><dd id="user_type">{{ user_types.get(me.user_type, me.user_type or "—") }}</dd>
    <dt>Catégories déclarées / Declared categories</dt><dd id="categories">{{ me.categories|join(", ") or "—" }}</dd>
    {% endif %}
    {% if cfg.client_id == "easypaiement" %}
    <dt>Confirmations exigées par l'adhérent / Confirmations the member requires</dt><dd id="confirmations">{{ me.confirmations or "—" }}</dd>
    <dt>Validateurs actifs en nombre suffisant / Enough enabled validators</dt><dd id="enough-validators">{% if me.enough_validators is none %}—{% elif me.enough_validators %}oui / yes{% else %}non / no{% endif %}</dd>
    {% endif %}
  </dl>
  {% if me.incomplete %}
  <p class="err" role="alert" id="incomplete">L'adhérent n'a pas encore assez de validateurs actifs pour ses {{ me.confirmations }} confirmations : aucun paiement ne peut être confirmé comme il l'exige. Sa personne déléguée doit créer un validateur.<br>
  <small lang="en">The member does not yet have enough enabled validators for its {{ me.confirmations }} confirmations: no payment can be confirmed as it requires. Its delegate must create a validator.</small></p>
  {% endif %}
  {% if powers %}
  <h2>Ce que vous pouvez faire <small lang="en">/ What you may do</small></h2>
  {% for label, items in powers %}
    <h3 id="power-{{ loop.index }}">{{ label }}</h3>
    <ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>
  {% endfor %}
  {% endif %}
  {% if "validateur" in me.roles %}
  <h2>Paiements à confirmer <small lang="en">/ Payments to confirm</small></h2>
  <form method="post" action="{{ url_for('teleservice.confirm_payment') }}">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <p>Ordre de paiement des cotisations (exemple) — la confirmation demande votre second facteur.
       <small lang="en">Contribution payment order (example) — confirming asks for your second factor.</small></p>
    <button type="submit" id="confirm-payment">Confirmer un paiement / Confirm a payment</button>
  </form>
  {% endif %}
  <form method="post" action="{{ url_for('teleservice.logout') }}">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <button type="submit">Se déconnecter / Log out</button>
  </form>
{% else %}
  <p>Vous n'êtes pas connecté(e). <small lang="en">You are not logged in.</small></p>
  <p><a id="login" href="{{ url_for('teleservice.login') }}">Se connecter / Log in</a></p>
{% endif %}
</main>
</body></html>
"""
