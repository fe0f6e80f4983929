import java.rmi.registry.LocateRegistry;
import java.rmi.registry.Registry;
import java.rmi.server.UnicastRemoteObject;

/**
 * Exports a Ping in an RMI registry on plain TCP (no TLS, no custom socket
 * factories: what java.rmi does by default) and serves it until killed.
 *
 * Usage: java PingServer [PORT]   (default 1099)
 * It prints "ready PORT" once the registry and the object are exported.
 */
public class PingServer implements Ping {
    @Override
    public void ping() {
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : Registry.REGISTRY_PORT;
        PingServer impl = new PingServer();
        Registry registry = LocateRegistry.createRegistry(port);
        // Export on the registry's port too: one listening socket, as a
        // distchat server has.
        Ping stub = (Ping) UnicastRemoteObject.exportObject(impl, port);
        registry.rebind("Ping", stub);
        System.out.println("ready " + port);
        System.out.flush();
        // The registry and the exported object hold non-daemon threads
        // that keep the JVM running; impl stays reachable through them.
        Thread.currentThread().join();
    }
}
