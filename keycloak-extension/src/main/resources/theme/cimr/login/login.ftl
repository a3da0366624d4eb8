<#--
  CIMR's login page: keycloak.v2's login form with the teleservice being entered in the title, the username
  labelled as CIMR users know it, and "Mot de passe oublié ?" leading to the portal's secret-question reset
  (login pre-filled) rather than to Keycloak's e-mail reset, which the realm leaves off. The portal's page tells
  a delegate to send the signed letter instead. The link comes from the realm attribute cimrForgotPasswordUrl
  (realm/realm.yaml: realm.login.forgot_password_url).
-->
<#import "template.ftl" as layout>
<#import "field.ftl" as field>
<#import "buttons.ftl" as buttons>
<#assign forgotUrl = (realm.getAttribute("cimrForgotPasswordUrl"))!"">
<#-- One message per situation: Keycloak says "disabled" alike to a teleservice user whose login was disabled and to a
     delegate (login = its numéro d'adhérent) whose account is not active yet, or no longer. -->
<#if message?has_content && message.summary == msg("accountDisabledMessage") && ((login.username)!"")?matches("[0-9]{4,10}")>
    <#global message = {"type": "error", "summary": msg("cimrDelegateAccountDisabled")}>
</#if>
<#-- The client's name in the title, never cut at a hyphen (« e-liquidation@ »), with its article when it needs one. -->
<#if client?? && client.name?has_content>
    <#assign clientName = advancedMsg(client.name)?replace("-", "\x2011")>
    <#assign ownTitle = "cimrLoginTitle." + client.clientId>
    <#assign cimrTitle = (msg(ownTitle, clientName) != ownTitle)?then(msg(ownTitle, clientName), msg("cimrLoginTitle", clientName))>
</#if>
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('username','password') displayInfo=true; section>
<!-- template: login.ftl (cimr) -->
    <#if section = "header">
        <#if cimrTitle??>${cimrTitle}<#else>${msg("loginAccountTitle")}</#if>
    <#elseif section = "form">
        <div id="kc-form">
          <div id="kc-form-wrapper">
            <#if realm.password>
                <form id="kc-form-login" class="${properties.kcFormClass!}" onsubmit="login.disabled = true; return true;" action="${url.loginAction}" method="post" novalidate="novalidate">
                    <#if !usernameHidden??>
                        <@field.input name="username" label=msg("username") error=messagesPerField.getFirstError('username','password')
                            autofocus=true autocomplete="username" value=login.username!'' />
                    </#if>
                    <@field.password name="password" label=msg("password") error="" forgotPassword=false autofocus=usernameHidden?? autocomplete="current-password">
                        <#if forgotUrl?has_content>
                            <div class="${properties.kcInputHelperTextItemClass}">
                              <span class="${properties.kcInputHelperTextItemTextClass}">
                                <a id="cimr-forgot-password" data-base="${forgotUrl}"
                                   href="${forgotUrl}<#if login.username?has_content>?login=${login.username?url('UTF-8')}</#if>">${msg("doForgotPassword")}</a>
                              </span>
                            </div>
                        </#if>
                    </@field.password>
                    <input type="hidden" id="id-hidden-input" name="credentialId" <#if auth.selectedCredential?has_content>value="${auth.selectedCredential}"</#if>/>
                    <@buttons.loginButton />
                </form>
                <#if forgotUrl?has_content>
                <script>
                  // The login typed so far goes with the link, so the portal's reset page starts pre-filled.
                  (function () {
                    var link = document.getElementById("cimr-forgot-password");
                    var user = document.getElementById("username");
                    if (!link || !user) { return; }
                    link.addEventListener("click", function () {
                      var login = user.value.trim();
                      link.href = link.dataset.base + (login ? "?login=" + encodeURIComponent(login) : "");
                    });
                  })();
                </script>
                </#if>
            </#if>
          </div>
        </div>
    <#elseif section = "info">
        <p id="cimr-login-help" class="cimr-help">${msg("cimrLoginHelp")}</p>
    </#if>
</@layout.registrationLayout>
