package ma.cimr.keycloak;

import jakarta.ws.rs.core.Response;
import org.keycloak.Config;
import org.keycloak.OAuth2Constants;
import org.keycloak.models.AuthenticatedClientSessionModel;
import org.keycloak.models.ClientModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.RefreshToken;
import org.keycloak.representations.idm.ClientPolicyExecutorConfigurationRepresentation;
import org.keycloak.services.clientpolicy.ClientPolicyContext;
import org.keycloak.services.clientpolicy.ClientPolicyException;
import org.keycloak.services.clientpolicy.context.TokenRefreshContext;
import org.keycloak.services.clientpolicy.context.TokenRefreshResponseContext;
import org.keycloak.services.clientpolicy.executor.ClientPolicyExecutorProvider;
import org.keycloak.services.clientpolicy.executor.ClientPolicyExecutorProviderFactory;
import org.keycloak.util.TokenUtil;

import java.util.List;

/**
 * A client-policy executor: a client session accepts only the LATEST refresh token it issued.
 *
 * <p>Keycloak 26.7 rotates refresh tokens ({@code revokeRefreshToken}) but judges an older one stale only when it
 * was issued in an earlier second than the last refresh: a token replayed within the same second as its rotation
 * is accepted (keycloak/keycloak#50999, fixed in 26.8.0 only). This executor remembers, in a note of the client
 * session, the id of the refresh token each refresh issued ({@code TOKEN_REFRESH_RESPONSE}), and refuses any other
 * ({@code TOKEN_REFRESH}, before Keycloak's own checks) with {@code invalid_grant}, ending that client session as
 * Keycloak does when it detects an older replay: whoever holds the newer token must log in again too.
 *
 * <p>The first refresh token of a session (from the code exchange) has no note yet; Keycloak's own check already
 * refuses it once used. A token whose signature fails, or whose session is gone, is left to Keycloak. Offline
 * tokens are not judged here (the realm issues none).
 */
public class RefreshTokenOnceExecutor implements ClientPolicyExecutorProvider<ClientPolicyExecutorConfigurationRepresentation>,
        ClientPolicyExecutorProviderFactory {

    public static final String ID = "cimr-refresh-token-once";
    static final String LATEST = "cimr.refresh.latest";

    private final KeycloakSession session;

    public RefreshTokenOnceExecutor() {
        this(null);
    }

    RefreshTokenOnceExecutor(KeycloakSession session) {
        this.session = session;
    }

    @Override
    public void executeOnEvent(ClientPolicyContext context) throws ClientPolicyException {
        switch (context.getEvent()) {
            case TOKEN_REFRESH -> refuseAllButTheLatest((TokenRefreshContext) context);
            case TOKEN_REFRESH_RESPONSE -> rememberTheLatest((TokenRefreshResponseContext) context);
            default -> { }
        }
    }

    private void refuseAllButTheLatest(TokenRefreshContext context) throws ClientPolicyException {
        String encoded = context.getParams().getFirst(OAuth2Constants.REFRESH_TOKEN);
        if (encoded == null) {
            return;
        }
        RefreshToken token = session.tokens().decode(encoded, RefreshToken.class);  // null: signature invalid
        if (token == null || token.getSessionId() == null || token.getId() == null
                || TokenUtil.TOKEN_TYPE_OFFLINE.equals(token.getType())) {
            return;
        }
        RealmModel realm = session.getContext().getRealm();
        ClientModel client = context.getClient();
        UserSessionModel userSession = session.sessions().getUserSession(realm, token.getSessionId());
        AuthenticatedClientSessionModel clientSession =
                userSession == null || client == null ? null : userSession.getAuthenticatedClientSessionByClient(client.getId());
        if (clientSession == null) {
            return;
        }
        String latest = clientSession.getNote(LATEST);
        if (latest != null && !latest.equals(token.getId())) {
            clientSession.detachFromUserSession();
            throw new ClientPolicyException("invalid_grant", "Stale token", Response.Status.BAD_REQUEST);
        }
    }

    private void rememberTheLatest(TokenRefreshResponseContext context) {
        AuthenticatedClientSessionModel clientSession = context.getClientSession();
        RefreshToken issued = context.getAccessTokenResponseBuilder().getRefreshToken();
        if (clientSession != null && issued != null && issued.getId() != null) {
            clientSession.setNote(LATEST, issued.getId());
        }
    }

    @Override
    public String getProviderId() {
        return ID;
    }

    @Override
    public void close() {
    }

    // --- factory ------------------------------------------------------------------------------------------------
    @Override
    public ClientPolicyExecutorProvider create(KeycloakSession session) {
        return new RefreshTokenOnceExecutor(session);
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getHelpText() {
        return "Accepts only the latest refresh token a client session issued; refuses older ones (even within the "
                + "second of their rotation) and ends that client session.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.of();
    }
}
