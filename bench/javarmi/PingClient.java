import java.rmi.registry.LocateRegistry;
import java.rmi.registry.Registry;
import java.util.Arrays;

/**
 * Looks up "Ping" in the registry at HOST:PORT, calls ping() WARMUP times
 * (to let the JIT compile the call path and RMI open its connection), then
 * N times one after the other, timing each round trip, and prints one line:
 *
 *   impl=java-rmi transport=tcp n=N warmup=W p50_us=... p99_us=... mean_us=...
 *
 * Usage: java PingClient HOST PORT N WARMUP
 */
public class PingClient {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: java PingClient HOST PORT N WARMUP");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int n = Integer.parseInt(args[2]);
        int warmup = Integer.parseInt(args[3]);
        if (n < 1 || warmup < 0) {
            System.err.println("PingClient: want N >= 1 and WARMUP >= 0");
            System.exit(2);
        }

        Registry registry = LocateRegistry.getRegistry(host, port);
        Ping ping = (Ping) registry.lookup("Ping");
        for (int i = 0; i < warmup; i++) {
            ping.ping();
        }
        long[] rtt = new long[n];
        long total = 0;
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            ping.ping();
            rtt[i] = System.nanoTime() - t0;
            total += rtt[i];
        }
        Arrays.sort(rtt);
        System.out.printf("impl=java-rmi transport=tcp n=%d warmup=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f%n",
                n, warmup, quantile(rtt, 0.50) / 1e3, quantile(rtt, 0.99) / 1e3, total / (double) n / 1e3);
    }

    /** quantile returns the q-quantile of sorted, by the nearest rank. */
    static long quantile(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }
}
