// A schema registry for the tests: the part of the Confluent Schema Registry
// REST API that scribe and Python's confluent-kafka use, kept in memory.
//
// No Confluent-compatible registry server can be installed on the machines
// the tests run on (Confluent's is not on Maven Central, Karapace is not on
// PyPI, and Apicurio's application needs modules Maven Central does not
// serve), so the tests run this one. Compatibility is decided by Apache
// Avro's Java library (SchemaCompatibility), the same checks Confluent's
// registry applies to Avro schemas; nothing here shares code with scribe.
//
//   java -cp 'LIBS/*' Registry.java [--user NAME --password SECRET]
//        [--keystore FILE.p12 --keystore-password SECRET]
//
// Listens on a free loopback port and prints `listening on URL` once it
// serves. With --user, every request needs that HTTP basic authentication;
// with --keystore, it serves HTTPS with that PKCS#12 key and certificate.
//
// Endpoints (https://docs.confluent.io/platform/current/schema-registry/develop/api.html):
//   GET  /subjects
//   POST /subjects/{subject}/versions            register; 409 if incompatible
//   POST /subjects/{subject}                     look a schema up
//   GET  /subjects/{subject}/versions
//   GET  /subjects/{subject}/versions/{n|latest}
//   GET  /schemas/ids/{id}
//   GET|PUT /config, GET|PUT /config/{subject}
//   POST /compatibility/subjects/{subject}/versions/{n|latest}
// Only Avro schemas without references.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;

public class Registry {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> LEVELS = List.of("NONE", "BACKWARD", "BACKWARD_TRANSITIVE",
            "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE");

    /** An HTTP error with the registry's error body. */
    static class Failure extends Exception {
        final int status;
        final int code;

        Failure(int status, int code, String message) {
            super(message);
            this.status = status;
            this.code = code;
        }
    }

    // Every schema once, by id from 1; each subject's versions as ids.
    final List<Schema> schemas = new ArrayList<>();
    final Map<String, List<Integer>> subjects = new LinkedHashMap<>();
    final Map<String, String> levels = new HashMap<>();
    String globalLevel = "BACKWARD";
    final String expectedAuth;

    Registry(String expectedAuth) {
        this.expectedAuth = expectedAuth;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            opts.put(args[i], args[i + 1]);
        }
        String auth = null;
        if (opts.containsKey("--user")) {
            String pair = opts.get("--user") + ":" + opts.getOrDefault("--password", "");
            auth = "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
        }
        Registry registry = new Registry(auth);
        InetSocketAddress loopback = new InetSocketAddress("127.0.0.1", 0);
        HttpServer server;
        String scheme;
        if (opts.containsKey("--keystore")) {
            char[] password = opts.getOrDefault("--keystore-password", "").toCharArray();
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (FileInputStream in = new FileInputStream(opts.get("--keystore"))) {
                store.load(in, password);
            }
            KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, password);
            SSLContext tls = SSLContext.getInstance("TLS");
            tls.init(keys.getKeyManagers(), null, null);
            HttpsServer https = HttpsServer.create(loopback, 0);
            https.setHttpsConfigurator(new HttpsConfigurator(tls));
            server = https;
            scheme = "https";
        } else {
            server = HttpServer.create(loopback, 0);
            scheme = "http";
        }
        server.createContext("/", registry::serve);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
        System.out.println("listening on " + scheme + "://127.0.0.1:" + server.getAddress().getPort());
        System.out.flush();
    }

    void serve(HttpExchange exchange) throws IOException {
        int status;
        JsonNode reply;
        try {
            String given = exchange.getRequestHeaders().getFirst("Authorization");
            if (expectedAuth != null && !expectedAuth.equals(given)) {
                throw new Failure(401, 401, "Unauthorized");
            }
            byte[] body = exchange.getRequestBody().readAllBytes();
            JsonNode request = body.length == 0 ? JSON.createObjectNode() : JSON.readTree(body);
            String[] path = exchange.getRequestURI().getRawPath().replaceAll("^/+|/+$", "").split("/");
            for (int i = 0; i < path.length; i++) {
                path[i] = URLDecoder.decode(path[i], StandardCharsets.UTF_8);
            }
            Map<String, String> query = query(exchange.getRequestURI().getRawQuery());
            synchronized (this) {
                reply = route(exchange.getRequestMethod(), path, query, request);
            }
            status = 200;
        } catch (Failure failure) {
            status = failure.status;
            ObjectNode error = JSON.createObjectNode();
            error.put("error_code", failure.code);
            error.put("message", failure.getMessage());
            reply = error;
        } catch (Exception unexpected) {
            status = 500;
            ObjectNode error = JSON.createObjectNode();
            error.put("error_code", 50001);
            error.put("message", String.valueOf(unexpected));
            reply = error;
        }
        byte[] out = JSON.writeValueAsBytes(reply);
        exchange.getResponseHeaders().set("Content-Type", "application/vnd.schemaregistry.v1+json");
        exchange.sendResponseHeaders(status, out.length);
        exchange.getResponseBody().write(out);
        exchange.close();
    }

    static Map<String, String> query(String raw) {
        Map<String, String> query = new HashMap<>();
        if (raw == null) {
            return query;
        }
        for (String pair : raw.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            query.put(URLDecoder.decode(key, StandardCharsets.UTF_8), URLDecoder.decode(value, StandardCharsets.UTF_8));
        }
        return query;
    }

    JsonNode route(String method, String[] path, Map<String, String> query, JsonNode request) throws Failure {
        String first = path[0];
        if (first.equals("subjects") && path.length == 1 && method.equals("GET")) {
            ArrayNode names = JSON.createArrayNode();
            subjects.keySet().forEach(names::add);
            return names;
        }
        if (first.equals("subjects") && path.length == 3 && path[2].equals("versions")) {
            if (method.equals("POST")) {
                return register(path[1], parse(request));
            }
            ArrayNode versions = JSON.createArrayNode();
            for (int v = 1; v <= versionsOf(path[1]).size(); v++) {
                versions.add(v);
            }
            return versions;
        }
        if (first.equals("subjects") && path.length == 2 && method.equals("POST")) {
            Schema schema = parse(request);
            List<Integer> ids = versionsOf(path[1]);
            for (int v = 0; v < ids.size(); v++) {
                if (schemas.get(ids.get(v) - 1).equals(schema)) {
                    return version(path[1], v + 1);
                }
            }
            throw new Failure(404, 40403, "Schema not found");
        }
        if (first.equals("subjects") && path.length == 4 && path[2].equals("versions") && method.equals("GET")) {
            return version(path[1], versionNumber(path[1], path[3]));
        }
        if (first.equals("schemas") && path.length == 3 && path[1].equals("ids") && method.equals("GET")) {
            int id = parseInt(path[2], 40403, "Schema not found");
            if (id < 1 || id > schemas.size()) {
                throw new Failure(404, 40403, "Schema " + id + " not found");
            }
            ObjectNode found = JSON.createObjectNode();
            found.put("schema", schemas.get(id - 1).toString());
            return found;
        }
        if (first.equals("config") && path.length <= 2) {
            String subject = path.length == 2 ? path[1] : null;
            if (method.equals("PUT")) {
                String level = request.path("compatibility").asText("").toUpperCase();
                if (!LEVELS.contains(level)) {
                    throw new Failure(422, 42203, "Invalid compatibility level " + level);
                }
                if (subject == null) {
                    globalLevel = level;
                } else {
                    levels.put(subject, level);
                }
                ObjectNode set = JSON.createObjectNode();
                set.put("compatibility", level);
                return set;
            }
            String level = subject == null ? globalLevel : levels.get(subject);
            if (level == null && "true".equals(query.get("defaultToGlobal"))) {
                level = globalLevel;
            }
            if (level == null) {
                throw new Failure(404, 40408, "Subject '" + subject + "' does not have subject-level compatibility configured");
            }
            ObjectNode config = JSON.createObjectNode();
            config.put("compatibilityLevel", level);
            return config;
        }
        if (first.equals("compatibility") && path.length == 5 && path[1].equals("subjects")
                && path[3].equals("versions") && method.equals("POST")) {
            Schema candidate = parse(request);
            int version = versionNumber(path[2], path[4]);
            Schema existing = schemas.get(versionsOf(path[2]).get(version - 1) - 1);
            List<String> messages = incompatibilities(levelOf(path[2]), candidate, List.of(existing));
            ObjectNode result = JSON.createObjectNode();
            result.put("is_compatible", messages.isEmpty());
            if ("true".equals(query.get("verbose"))) {
                ArrayNode list = result.putArray("messages");
                messages.forEach(list::add);
            }
            return result;
        }
        throw new Failure(404, 404, "HTTP 404 Not Found");
    }

    Schema parse(JsonNode request) throws Failure {
        String type = request.path("schemaType").asText("AVRO");
        if (!type.equals("AVRO")) {
            throw new Failure(422, 42201, "Only AVRO schemas are supported here, not " + type);
        }
        if (request.hasNonNull("references") && request.get("references").size() > 0) {
            throw new Failure(422, 42201, "Schema references are not supported here");
        }
        try {
            return new Schema.Parser().parse(request.path("schema").asText());
        } catch (RuntimeException invalid) {
            throw new Failure(422, 42201, "Invalid schema: " + invalid.getMessage());
        }
    }

    List<Integer> versionsOf(String subject) throws Failure {
        List<Integer> ids = subjects.get(subject);
        if (ids == null) {
            throw new Failure(404, 40401, "Subject '" + subject + "' not found.");
        }
        return ids;
    }

    int versionNumber(String subject, String given) throws Failure {
        int count = versionsOf(subject).size();
        if (given.equals("latest") || given.equals("-1")) {
            return count;
        }
        int version = parseInt(given, 42202, "The specified version '" + given + "' is not a valid version id.");
        if (version < 1 || version > count) {
            throw new Failure(404, 40402, "Version " + version + " not found.");
        }
        return version;
    }

    static int parseInt(String text, int code, String message) throws Failure {
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new Failure(422, code, message);
        }
    }

    ObjectNode version(String subject, int version) throws Failure {
        int id = versionsOf(subject).get(version - 1);
        ObjectNode found = JSON.createObjectNode();
        found.put("subject", subject);
        found.put("version", version);
        found.put("id", id);
        found.put("schema", schemas.get(id - 1).toString());
        return found;
    }

    String levelOf(String subject) {
        return levels.getOrDefault(subject, globalLevel);
    }

    ObjectNode register(String subject, Schema schema) throws Failure {
        List<Integer> ids = subjects.getOrDefault(subject, new ArrayList<>());
        for (int id : ids) {
            if (schemas.get(id - 1).equals(schema)) {
                ObjectNode known = JSON.createObjectNode();
                known.put("id", id);
                return known;
            }
        }
        String level = levelOf(subject);
        List<Schema> against = new ArrayList<>();
        if (!ids.isEmpty()) {
            if (level.endsWith("_TRANSITIVE")) {
                ids.forEach(id -> against.add(schemas.get(id - 1)));
            } else {
                against.add(schemas.get(ids.get(ids.size() - 1) - 1));
            }
        }
        List<String> messages = incompatibilities(level, schema, against);
        if (!messages.isEmpty()) {
            throw new Failure(409, 409, "Schema being registered is incompatible with an earlier schema for subject \""
                    + subject + "\", details: " + messages);
        }
        int id = schemas.indexOf(schema) + 1;
        if (id == 0) {
            schemas.add(schema);
            id = schemas.size();
        }
        ids.add(id);
        subjects.put(subject, ids);
        ObjectNode registered = JSON.createObjectNode();
        registered.put("id", id);
        return registered;
    }

    /** What stops `candidate` from following `existing` under `level`; empty when nothing does. */
    static List<String> incompatibilities(String level, Schema candidate, List<Schema> existing) {
        List<String> messages = new ArrayList<>();
        boolean backward = level.startsWith("BACKWARD") || level.startsWith("FULL");
        boolean forward = level.startsWith("FORWARD") || level.startsWith("FULL");
        for (Schema old : existing) {
            if (backward) {
                describe("BACKWARD", SchemaCompatibility.checkReaderWriterCompatibility(candidate, old), messages);
            }
            if (forward) {
                describe("FORWARD", SchemaCompatibility.checkReaderWriterCompatibility(old, candidate), messages);
            }
        }
        return messages;
    }

    static void describe(String direction, SchemaCompatibility.SchemaPairCompatibility pair, List<String> messages) {
        for (SchemaCompatibility.Incompatibility why : pair.getResult().getIncompatibilities()) {
            messages.add(direction + ": " + why.getType() + " at " + why.getLocation() + ": " + why.getMessage());
        }
    }
}
