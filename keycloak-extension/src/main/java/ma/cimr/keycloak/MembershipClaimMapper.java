package ma.cimr.keycloak;

import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAttributeMapperHelper;
import org.keycloak.protocol.oidc.mappers.OIDCIDTokenMapper;
import org.keycloak.protocol.oidc.mappers.TokenIntrospectionTokenMapper;
import org.keycloak.protocol.oidc.mappers.UserInfoTokenMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.IDToken;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Token claims a delegate cannot forge: derived from group membership, not from user attributes.
 *
 * <p>A delegate may write its users' attributes through the Admin API (user-profile "admin" is any Admin API
 * caller, keycloak/keycloak#40259), but fine-grained admin permissions confine its membership changes to its
 * own adherent's groups. So:
 * <ul>
 *   <li>{@code cimr.source=adherent}: the numéro of the one adherent the user belongs to — a member of
 *   {@code /adherents/<n>} or any group below it, or of {@code /delegates/<n>}. A user tied to no adherent,
 *   or to two, gets no claim (fail closed).</li>
 *   <li>{@code cimr.source=categories}: the user's {@code categories} attribute, kept only where the category
 *   is one of its adherent's active categories (the {@code categories} attribute of {@code /adherents/<n>},
 *   which only CIMR writes). No adherent: no claim.</li>
 * </ul>
 */
public class MembershipClaimMapper extends AbstractOIDCProtocolMapper
        implements OIDCAccessTokenMapper, OIDCIDTokenMapper, UserInfoTokenMapper, TokenIntrospectionTokenMapper {

    public static final String ID = "cimr-membership-mapper";
    public static final String SOURCE = "cimr.source";
    static final String ADHERENTS = "adherents";
    static final String DELEGATES = "delegates";

    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        ProviderConfigProperty source = new ProviderConfigProperty();
        source.setName(SOURCE);
        source.setLabel("Derived value");
        source.setHelpText("adherent: the numéro of the user's adherent group; categories: the user's categories "
                + "that are active for that adherent.");
        source.setType(ProviderConfigProperty.LIST_TYPE);
        source.setOptions(List.of("adherent", "categories"));
        source.setDefaultValue("adherent");
        CONFIG.add(source);
        OIDCAttributeMapperHelper.addTokenClaimNameConfig(CONFIG);
        OIDCAttributeMapperHelper.addJsonTypeConfig(CONFIG);
        OIDCAttributeMapperHelper.addIncludeInTokensConfig(CONFIG, MembershipClaimMapper.class);
    }

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getDisplayType() {
        return "CIMR adherent from group membership";
    }

    @Override
    public String getHelpText() {
        return "The adherent (or its active categories held by the user) derived from group membership, "
                + "which a delegate cannot change outside its own adherent.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    protected void setClaim(IDToken token, ProtocolMapperModel model, UserSessionModel userSession,
                            KeycloakSession session, ClientSessionContext clientSessionCtx) {
        UserModel user = userSession.getUser();
        String numero = adherentOf(user);
        if (numero == null) {
            return;
        }
        if (!"categories".equals(model.getConfig().get(SOURCE))) {
            OIDCAttributeMapperHelper.mapClaim(token, model, numero);
            return;
        }
        RealmModel realm = userSession.getRealm();
        GroupModel group = KeycloakModelUtils.findGroupByPath(session, realm, "/" + ADHERENTS + "/" + numero);
        if (group == null) {
            return;
        }
        Set<String> active = group.getAttributeStream("categories").collect(Collectors.toSet());
        List<String> held = user.getAttributeStream("categories").filter(active::contains).sorted()
                .collect(Collectors.toList());
        OIDCAttributeMapperHelper.mapClaim(token, model, held);
    }

    /**
     * The numéro of the user's one adherent: the name of the group right under {@code /adherents} that holds
     * (directly or through a subgroup) one of its groups, or of its {@code /delegates/<n>} group. Null when
     * there is none, or more than one.
     */
    static String adherentOf(UserModel user) {
        Set<String> found = new TreeSet<>();
        user.getGroupsStream().forEach(group -> {
            List<GroupModel> chain = new ArrayList<>();  // group, parent, ..., top-level group
            for (GroupModel g = group; g != null; g = g.getParent()) {
                chain.add(g);
            }
            GroupModel top = chain.get(chain.size() - 1);
            boolean underAdherents = ADHERENTS.equals(top.getName()) && chain.size() >= 2;
            boolean delegate = DELEGATES.equals(top.getName()) && chain.size() == 2;
            if (underAdherents || delegate) {
                found.add(chain.get(chain.size() - 2).getName());
            }
        });
        return found.size() == 1 ? found.iterator().next() : null;
    }
}
