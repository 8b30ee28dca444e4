package local.hapi;

import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.server.RestfulServer;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Entry point: {@code java -jar hapi-test-server.jar --port 8080 [--host 127.0.0.1]}.
 *
 * <p>Builds the Spring context ({@link ServerConfig}), then serves the HAPI {@link RestfulServer}
 * at {@code http://<host>:<port>/fhir} with an embedded Jetty 12 (Jakarta Servlet 6).
 * The port may also come from {@code -Dhapi.port=N} or the {@code HAPI_PORT} environment
 * variable; the default is 8080.
 */
public final class HapiTestServer {

	private static final Logger ourLog = LoggerFactory.getLogger(HapiTestServer.class);

	private HapiTestServer() {}

	public static void main(String[] args) throws Exception {
		long start = System.nanoTime();
		String host = System.getProperty("hapi.host", "127.0.0.1");
		String portStr = System.getProperty("hapi.port", System.getenv().getOrDefault("HAPI_PORT", "8080"));
		for (int i = 0; i < args.length; i++) {
			String a = args[i];
			if ((a.equals("--port") || a.equals("-p")) && i + 1 < args.length) {
				portStr = args[++i];
			} else if (a.startsWith("--port=")) {
				portStr = a.substring("--port=".length());
			} else if (a.equals("--host") && i + 1 < args.length) {
				host = args[++i];
			} else if (a.startsWith("--host=")) {
				host = a.substring("--host=".length());
			} else if (a.equals("--help") || a.equals("-h")) {
				System.out.println("usage: java -jar hapi-test-server.jar [--port N] [--host ADDR]");
				return;
			} else {
				System.err.println("unknown argument: " + a);
				System.exit(2);
			}
		}
		int port = Integer.parseInt(portStr.trim());

		AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
		ctx.register(ServerConfig.class);
		ctx.refresh();
		ctx.registerShutdownHook();

		RestfulServer restfulServer = ctx.getBean(RestfulServer.class);

		Server jetty = new Server();
		ServerConnector connector = new ServerConnector(jetty);
		connector.setHost(host);
		connector.setPort(port);
		jetty.addConnector(connector);

		ServletContextHandler handler = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
		handler.setContextPath("/");
		ServletHolder holder = new ServletHolder("fhir", restfulServer);
		holder.setInitOrder(1); // initialise at startup, not on the first request
		handler.addServlet(holder, "/fhir/*");
		jetty.setHandler(handler);
		jetty.setStopAtShutdown(true);
		jetty.setStopTimeout(5000);
		jetty.start();

		long ms = (System.nanoTime() - start) / 1_000_000;
		ourLog.info("HAPI FHIR R4 test server started in {} ms at http://{}:{}/fhir (default page size {}, max {})",
				ms, host, connector.getLocalPort(),
				ctx.getBean(DatabaseBackedPagingProvider.class).getDefaultPageSize(),
				ctx.getBean(DatabaseBackedPagingProvider.class).getMaximumPageSize());
		jetty.join();
	}
}
