package ma.cimr.keycloak;

import jakarta.ws.rs.core.Response;
import org.keycloak.Config;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.events.Errors;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.AuthenticatorConfigModel;
import org.keycloak.models.ClientModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.provider.ProviderConfigProperty;

import java.util.List;
import java.util.Map;

/**
 * Refuses the login (an error page, a LOGIN_ERROR event {@code access_denied}) WITHOUT counting it as a failed
 * login. Keycloak's own deny-access-authenticator ends the flow with {@code context.failure(...)}, which the
 * brute-force detector counts like a wrong password: a user refused by a teleservice for lack of its roles —
 * even through a cross-site {@code prompt=none} request carrying only its SSO cookie — was locked out of the
 * teleservice it is allowed. This one ends the flow with a challenge (the error page): nothing is counted,
 * and a {@code prompt=none} request gets {@code login_required}.
 */
public class RefuseAccessAuthenticator implements Authenticator, AuthenticatorFactory {

    public static final String ID = "cimr-refuse-access";
    public static final String MESSAGE = "denyErrorMessage";

    private static final List<ProviderConfigProperty> CONFIG = List.of(message());

    private static ProviderConfigProperty message() {
        ProviderConfigProperty p = new ProviderConfigProperty();
        p.setName(MESSAGE);
        p.setLabel("Error message");
        p.setHelpText("Shown on the error page: a message key of the login theme or a text; {0} is the client's name.");
        p.setType(ProviderConfigProperty.STRING_TYPE);
        return p;
    }

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        String text = "access-denied";
        AuthenticatorConfigModel config = context.getAuthenticatorConfig();
        if (config != null) {
            Map<String, String> values = config.getConfig();
            if (values != null && values.get(MESSAGE) != null && !values.get(MESSAGE).isBlank()) {
                text = values.get(MESSAGE);
            }
        }
        context.getEvent().error(Errors.ACCESS_DENIED);
        // The message may name the teleservice being entered: {0} is the client's name (its id if unnamed).
        ClientModel client = context.getAuthenticationSession().getClient();
        String service = client.getName() != null && !client.getName().isBlank() ? client.getName() : client.getClientId();
        Response page = context.form().setError(text, service).createErrorPage(Response.Status.FORBIDDEN);
        context.forceChallenge(page);
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        authenticate(context);
    }

    @Override
    public boolean requiresUser() {
        return false;
    }

    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        return true;
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
    }

    @Override
    public Authenticator create(KeycloakSession session) {
        return this;
    }

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getDisplayType() {
        return "CIMR: refuse access (not a failed login)";
    }

    @Override
    public String getReferenceCategory() {
        return null;
    }

    @Override
    public boolean isConfigurable() {
        return true;
    }

    @Override
    public Requirement[] getRequirementChoices() {
        return new Requirement[]{Requirement.REQUIRED, Requirement.DISABLED};
    }

    @Override
    public boolean isUserSetupAllowed() {
        return false;
    }

    @Override
    public String getHelpText() {
        return "Shows an error page and stops the flow, without counting a failed login (brute force).";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }
}
