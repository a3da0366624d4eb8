// Keycloak's keycloak.v2 pages name some labels after ids no element has (keycloak/keycloak#51206): the TOTP
// set-up's two labels point at "form-vertical-name", and the read-only login shown above a code or a new password
// is labelled for "username" while its input is "kc-attempted-username". A screen reader then announces unnamed
// fields. Each such label is tied here to the one field of its own form group. Remove once Keycloak fixes it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("label[for]").forEach(function (label) {
    if (document.getElementById(label.htmlFor)) {
      return;
    }
    var group = label.closest(".pf-v5-c-form__group");
    var fields = group ? group.querySelectorAll("input:not([type=hidden]), select, textarea") : [];
    if (fields.length === 1 && fields[0].id) {
      label.htmlFor = fields[0].id;
    }
  });
});
