import java.rmi.Remote;
import java.rmi.RemoteException;

/**
 * The empty remote call: a remote interface with one method that takes
 * nothing and returns nothing, so a call measures the RMI layer alone.
 */
public interface Ping extends Remote {
    void ping() throws RemoteException;
}
