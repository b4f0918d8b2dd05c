// Starts DynamoDB Local listening on one address only (127.0.0.1 by default).
//
// DynamoDB Local's own ServerRunner binds its Jetty server to every network
// interface and has no option to change that. This launcher builds the server
// exactly as ServerRunner does, from the same command-line arguments, and
// sets the host of its single connector before starting it.
//
// Run with the JDK's single-file source launcher (no build step):
//   java -cp "$CLASSPATH" LoopbackDynamoDBLocal.java -port 18000 -inMemory -sharedDb
// The bind address comes from the system property cutover.bind (default 127.0.0.1).

import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("cutover.bind", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field f = DynamoDBProxyServer.class.getDeclaredField("server");
        f.setAccessible(true);
        Server server = (Server) f.get(proxy);
        Connector[] connectors = server.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local created no connector; this launcher does not know this version");
        }
        for (Connector c : connectors) {
            ((ServerConnector) c).setHost(host);
        }
        proxy.start();
        System.err.println("DynamoDB Local listening on " + host + " with arguments " + String.join(" ", args));
        proxy.join();
    }
}
