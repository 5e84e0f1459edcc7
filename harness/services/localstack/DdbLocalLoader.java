/*
 * Stand-in for LocalStack's `ddb-local-loader` java agent.
 *
 * LocalStack starts DynamoDB Local with `-javaagent:<dynamodb-local dir>/ddb-local-loader-0.1.jar`
 * and would download its own agent (a javassist patch that lifts the 20-GSI limit) from GitHub.
 * Offline we only need the JVM to accept the flag, so this agent does nothing: a class with a
 * premain method, named by the jar manifest's Premain-Class. Built by localstack_setup.py.
 */
public final class DdbLocalLoader {
    private DdbLocalLoader() {
    }

    public static void premain(String args, java.lang.instrument.Instrumentation instrumentation) {
        // Intentionally empty: see the comment above.
    }
}
