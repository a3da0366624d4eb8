import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/**
 * Deletes a Keycloak node's row in its discovery table (jgroups_ping) once that node's process is known to be gone:
 * docker-compose.yml's Keycloak containers run it before `kc.sh start` (docker/keycloak-start.sh), so a container
 * restarted after a crash removes the row its dead predecessor left. Without that, Keycloak's split-brain guard keeps
 * the other node not ready until the row is a minute old (docs/operations.md). It waits (at most 10 s) until another
 * node is coordinator, so that the table always names one. The same as devstack's ProductionStack.forget_node and
 * the systemd units' helper (devstack/systemd.py).
 *
 * Usage: java -cp "/opt/cimr:/opt/keycloak/lib/lib/main/*" ForgetNode NODE_NAME (KC_DB_URL, KC_DB_USERNAME,
 * KC_DB_PASSWORD from the environment).
 */
public final class ForgetNode {
    public static void main(String[] args) throws Exception {
        if (args.length != 1 || args[0].isBlank()) {
            System.err.println("usage: ForgetNode NODE_NAME");
            System.exit(2);
        }
        String name = args[0];
        try (Connection db = DriverManager.getConnection(System.getenv("KC_DB_URL"), System.getenv("KC_DB_USERNAME"),
                System.getenv("KC_DB_PASSWORD"))) {
            if (!exists(db, "SELECT 1 FROM information_schema.tables WHERE table_name = 'jgroups_ping'", null)) {
                return; // the first start: no schema yet
            }
            long deadline = System.currentTimeMillis() + 10_000;
            while (System.currentTimeMillis() < deadline
                    && !exists(db, "SELECT 1 FROM jgroups_ping WHERE coord AND name <> ?", name)
                    && exists(db, "SELECT 1 FROM jgroups_ping WHERE name = ?", name)) {
                Thread.sleep(100);
            }
            try (PreparedStatement delete = db.prepareStatement("DELETE FROM jgroups_ping WHERE name = ?")) {
                delete.setString(1, name);
                int rows = delete.executeUpdate();
                if (rows > 0) {
                    System.err.println("forgot " + rows + " discovery row(s) of " + name + " left by its last run");
                }
            }
        }
    }

    private static boolean exists(Connection db, String sql, String name) throws Exception {
        try (PreparedStatement query = db.prepareStatement(sql)) {
            if (name != null) {
                query.setString(1, name);
            }
            try (ResultSet rows = query.executeQuery()) {
                return rows.next();
            }
        }
    }
}
