package ma.cimr.keycloak;

import jakarta.persistence.EntityManager;
import jakarta.ws.rs.BadRequestException;
import jakarta.ws.rs.ForbiddenException;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.NotAuthorizedException;
import jakarta.ws.rs.NotFoundException;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.keycloak.authorization.fgap.AdminPermissionsSchema;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.models.AdminRoles;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserLoginFailureModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.jpa.entities.UserAttributeEntity;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager;
import org.keycloak.services.managers.BruteForceProtector;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;
import org.keycloak.services.resources.admin.fgap.AdminPermissions;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code GET /realms/{realm}/cimr-adherent/users?adherent=<n>}: the members of one adherent's group tree
 * ({@code /adherents/<n>} and its subgroups) with their details, attributes and the groups of that tree they are
 * in, and the adherent group's own attributes — one request for a delegate's listing pages.
 *
 * <p>Keycloak stays the second wall: the caller must be allowed to list the members of every group of that tree
 * exactly as the Admin API decides it (view-users, or the fine-grained {@code view-members} permission a delegate
 * holds on its own adherent's groups only). The permission is evaluated once per group, not once per user, which
 * is what makes a delegate's listing through {@code GET /users} slow. Nothing here writes.
 *
 * <p>Each user also says whether brute-force detection holds it {@code locked} — what
 * {@code GET /attack-detection/brute-force/users/{id}} answers as {@code disabled}, which the same caller may read
 * for the same users — so that a user's page is one request too.
 */
public class AdherentUsersResource {

    private static final Pattern NUMERO = Pattern.compile("^[0-9]{4,10}$");

    private final KeycloakSession session;

    public AdherentUsersResource(KeycloakSession session) {
        this.session = session;
    }

    @GET
    @Path("users")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> users(@QueryParam("adherent") String numero) {
        if (numero == null || !NUMERO.matcher(numero).matches()) {
            throw new BadRequestException("adherent: a numéro d'adhérent of 4 to 10 digits is required");
        }
        RealmModel realm = session.getContext().getRealm();
        AdminPermissionEvaluator permissions = permissions(realm);
        // The tree is looked up as the server, then judged below as the caller. Looked up as a confined caller,
        // Keycloak 26.7 filters the path's groups by what the caller may view when they are not in this node's
        // cache (after a restart, an eviction, on a node that never served them) — /adherents is not the
        // delegate's to view — and answers "no such group" (docs/security.md, "Cold cache").
        GroupModel top = AdminPermissionsSchema.runWithoutAuthorization(session,
                () -> KeycloakModelUtils.findGroupByPath(session, realm,
                        AdherentUsersProviderFactory.ADHERENTS + "/" + numero));
        // view-users / manage-users: the Admin API's own test before any fine-grained permission. Asked through
        // users().canView(), a caller without them costs an evaluation of the realm-wide "all users" permission,
        // which looks the resource's name up as a user id and a username in the database, every time. A caller
        // allowed by such a realm-wide permission only is judged group by group below, like a delegate.
        boolean viewsAll = permissions.hasOneAdminRole(AdminRoles.VIEW_USERS, AdminRoles.MANAGE_USERS);
        if (top == null) {
            // A confined caller gets the same answer for a missing adherent as for another's: nothing to probe.
            if (viewsAll) {
                throw new NotFoundException("no such adherent");
            }
            throw new ForbiddenException();
        }
        Map<String, String> paths = new LinkedHashMap<>();  // group id -> path under the adherent ("" = top)
        AdminPermissionsSchema.runWithoutAuthorization(session, () -> subtree(top, "", paths));
        if (!viewsAll) {
            for (String id : paths.keySet()) {
                if (!permissions.groups().canViewMembers(realm.getGroupById(id))) {
                    throw new ForbiddenException();
                }
            }
        }
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        Map<String, Map<String, Object>> byId = new LinkedHashMap<>();
        em.createQuery("select m.user.id, m.groupId from UserGroupMembershipEntity m where m.groupId in :groups",
                        Object[].class)
                .setParameter("groups", new ArrayList<>(paths.keySet())).getResultList()
                .forEach(r -> groupsOf(byId.computeIfAbsent((String) r[0], k -> new LinkedHashMap<>()))
                        .add(paths.get((String) r[1])));
        if (!byId.isEmpty()) {
            List<String> ids = new ArrayList<>(byId.keySet());
            em.createQuery("select u.id, u.username, u.enabled, u.email, u.firstName, u.lastName, u.createdTimestamp "
                            + "from UserEntity u where u.id in :ids", Object[].class)
                    .setParameter("ids", ids).getResultList()
                    .forEach(r -> {
                        Map<String, Object> user = byId.get((String) r[0]);
                        user.put("id", r[0]);
                        user.put("username", r[1]);
                        user.put("enabled", r[2]);
                        user.put("email", r[3]);
                        user.put("firstName", r[4]);
                        user.put("lastName", r[5]);
                        user.put("createdTimestamp", r[6]);
                    });
            // getValue() of the entity, not the column: long values live in another column.
            em.createQuery("select a.user.id, a from UserAttributeEntity a where a.user.id in :ids "
                            + "order by a.name, a.value", Object[].class)
                    .setParameter("ids", ids).getResultList()
                    .forEach(r -> attributesOf(byId.get((String) r[0]))
                            .computeIfAbsent(((UserAttributeEntity) r[1]).getName(), k -> new ArrayList<>())
                            .add(((UserAttributeEntity) r[1]).getValue()));
            if (realm.isBruteForceProtected()) {
                byId.forEach((id, user) -> user.put("locked", locked(realm, id)));
            }
        }
        Map<String, Object> adherent = new LinkedHashMap<>();
        adherent.put("id", top.getId());
        adherent.put("name", top.getName());
        adherent.put("attributes", top.getAttributes());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("adherent", adherent);
        out.put("users", new ArrayList<>(byId.values()));
        return out;
    }

    /** As {@code AttackDetectionResource.bruteForceUserStatus} decides "disabled": only a user with failures. */
    private boolean locked(RealmModel realm, String userId) {
        UserLoginFailureModel failures = session.loginFailures().getUserLoginFailure(realm, userId);
        if (failures == null) {
            return false;
        }
        UserModel user = session.users().getUserById(realm, userId);
        BruteForceProtector protector = session.getProvider(BruteForceProtector.class);
        return user != null && (protector.isPermanentlyLockedOut(session, realm, user)
                || protector.isTemporarilyDisabled(session, realm, user));
    }

    private static void subtree(GroupModel group, String path, Map<String, String> out) {
        out.put(group.getId(), path);
        group.getSubGroupsStream().forEach(g -> subtree(g, path.isEmpty() ? g.getName() : path + "/" + g.getName(), out));
    }

    private AdminPermissionEvaluator permissions(RealmModel realm) {
        AuthenticationManager.AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        if (auth == null) {
            throw new NotAuthorizedException("Bearer");
        }
        return AdminPermissions.evaluator(session, realm, new AdminAuth(realm, auth.token(), auth.user(), auth.client()));
    }

    @SuppressWarnings("unchecked")
    private static List<String> groupsOf(Map<String, Object> user) {
        return (List<String>) user.computeIfAbsent("groups", k -> new ArrayList<String>());
    }

    @SuppressWarnings("unchecked")
    private static Map<String, List<String>> attributesOf(Map<String, Object> user) {
        return (Map<String, List<String>>) user.computeIfAbsent("attributes",
                k -> new LinkedHashMap<String, List<String>>());
    }
}
