package local.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.server.exceptions.InternalErrorException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.hl7.fhir.r4.model.OperationOutcome;
import org.hl7.fhir.r4.model.OperationOutcome.IssueType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.web.cors.CorsConfiguration;
import org.springframework.web.cors.DefaultCorsProcessor;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * HAPI as the FHIR server of a SMART launch, the way an EHR's is.
 *
 * <p>Publishes {@code <base>/.well-known/smart-configuration} from a JSON file (read on each request, so the
 * tests write it after the server started; 404 while it is absent). While that file names an
 * {@code introspection_endpoint}, a request carrying {@code Authorization: Bearer <token>} passes only when
 * that endpoint (RFC 7662) calls the token active, an answer kept for a few seconds; otherwise 401 with an
 * OperationOutcome. A request with no Authorization header passes as before: the rest of the integration
 * suite calls HAPI without tokens. Tokens are never logged. Refusals are written here rather than thrown,
 * because HAPI logs every exception an interceptor throws as an error with its stack trace.
 */
@Interceptor
public final class SmartGuard {

	private static final Logger ourLog = LoggerFactory.getLogger(SmartGuard.class);
	private static final String WELL_KNOWN = "/.well-known/smart-configuration";
	private static final Duration KEEP_VERDICT = Duration.ofSeconds(5);
	private static final Duration TIMEOUT = Duration.ofSeconds(5);

	private final Path configuration;
	private final CorsConfiguration cors;
	private final FhirContext fhir;
	private final ObjectMapper json = new ObjectMapper();
	// HTTP/1.1: the default HTTP/2 first asks for an h2c upgrade, which small servers (uvicorn) refuse
	private final HttpClient http =
			HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(TIMEOUT).build();
	private final Map<String, Verdict> verdicts = new ConcurrentHashMap<>();

	private record Verdict(boolean active, long untilNanos) {}

	public SmartGuard(Path configuration, CorsConfiguration cors, FhirContext fhir) {
		this.configuration = configuration;
		this.cors = cors;
		this.fhir = fhir;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_PROCESSED)
	public boolean serveConfiguration(HttpServletRequest request, HttpServletResponse response)
			throws IOException {
		if (!"GET".equals(request.getMethod()) || !WELL_KNOWN.equals(request.getPathInfo())) {
			return true;
		}
		new DefaultCorsProcessor().processRequest(cors, request, response); // no-op if CORS already answered
		response.setHeader("Cache-Control", "no-store");
		try {
			write(response, 200, "application/json", Files.readAllBytes(configuration));
		} catch (NoSuchFileException e) {
			refuse(response, 404, IssueType.NOTFOUND, "this server publishes no SMART configuration");
		}
		return false; // answered here
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public boolean checkToken(HttpServletRequest request, HttpServletResponse response) throws IOException {
		String header = request.getHeader("Authorization");
		if (header == null) {
			return true;
		}
		String endpoint = introspectionEndpoint();
		if (endpoint == null) {
			return true;
		}
		String why = null;
		if (!header.regionMatches(true, 0, "Bearer ", 0, 7) || header.substring(7).isBlank()) {
			why = "the Authorization header carries no Bearer token";
		} else if (!active(endpoint, header.substring(7).trim())) {
			why = "the access token is not active";
		}
		if (why == null) {
			return true;
		}
		response.setHeader("WWW-Authenticate", "Bearer error=\"invalid_token\""); // RFC 6750 §3
		refuse(response, 401, IssueType.LOGIN, why);
		return false;
	}

	/** The introspection endpoint the configuration file names, or null (no file, or it names none). */
	private String introspectionEndpoint() {
		JsonNode document;
		try {
			document = json.readTree(Files.readAllBytes(configuration));
		} catch (NoSuchFileException e) {
			return null;
		} catch (IOException e) {
			throw new InternalErrorException("the SMART configuration file is not readable JSON", e);
		}
		JsonNode endpoint = document.get("introspection_endpoint");
		return endpoint != null && endpoint.isTextual() ? endpoint.asText() : null;
	}

	private boolean active(String endpoint, String token) {
		String key = endpoint + " " + token;
		long now = System.nanoTime();
		Verdict known = verdicts.get(key);
		if (known != null && known.untilNanos() - now > 0) {
			return known.active();
		}
		Boolean answer = introspect(endpoint, token);
		if (answer == null) {
			return false; // could not ask: refuse, and ask again next time
		}
		verdicts.values().removeIf(v -> v.untilNanos() - now <= 0);
		verdicts.put(key, new Verdict(answer, now + KEEP_VERDICT.toNanos()));
		return answer;
	}

	/** RFC 7662: POST token=..., answer {"active": true|false, ...}; null when the endpoint cannot say. */
	private Boolean introspect(String endpoint, String token) {
		HttpRequest request = HttpRequest.newBuilder(URI.create(endpoint))
				.timeout(TIMEOUT)
				.header("Content-Type", "application/x-www-form-urlencoded")
				.header("Accept", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString("token=" + URLEncoder.encode(token, StandardCharsets.UTF_8)))
				.build();
		try {
			HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
			if (response.statusCode() != 200) {
				ourLog.warn("token introspection at {} answered HTTP {}", endpoint, response.statusCode());
				return null;
			}
			return json.readTree(response.body()).path("active").asBoolean(false);
		} catch (IOException e) {
			ourLog.warn("token introspection at {} failed: {}", endpoint, e.toString());
			return null;
		} catch (InterruptedException e) {
			Thread.currentThread().interrupt();
			return null;
		}
	}

	private void refuse(HttpServletResponse response, int status, IssueType code, String why) throws IOException {
		OperationOutcome outcome = new OperationOutcome();
		outcome.addIssue().setSeverity(OperationOutcome.IssueSeverity.ERROR).setCode(code).setDiagnostics(why);
		String body = fhir.newJsonParser().encodeResourceToString(outcome);
		write(response, status, "application/fhir+json", body.getBytes(StandardCharsets.UTF_8));
	}

	private static void write(HttpServletResponse response, int status, String type, byte[] body)
			throws IOException {
		response.setStatus(status);
		response.setContentType(type);
		response.setCharacterEncoding("UTF-8");
		response.getOutputStream().write(body);
	}
}
