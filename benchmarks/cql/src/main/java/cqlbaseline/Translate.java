package cqlbaseline;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.cqframework.cql.cql2elm.CqlCompilerException;
import org.cqframework.cql.cql2elm.CqlCompilerOptions;
import org.cqframework.cql.cql2elm.CqlTranslator;
import org.cqframework.cql.cql2elm.LibraryManager;
import org.cqframework.cql.cql2elm.ModelManager;
import org.cqframework.cql.cql2elm.quick.FhirLibrarySourceProvider;
import org.hl7.elm.r1.Library;
import org.hl7.elm.r1.VersionedIdentifier;

/**
 * Translates one CQL library to ELM JSON, and writes the ELM of every library it includes (FHIRHelpers
 * 4.0.1 from the translator's FHIR model artifact) beside it, so cql-execution can load them all.
 * Prints one JSON line: the files written and the translation time inside the JVM.
 */
public final class Translate {
  private Translate() {}

  public static void main(String[] args) throws Exception {
    File input = new File(args[0]);
    Path output = Path.of(args[1]);
    Files.createDirectories(output);
    long started = System.nanoTime();
    ModelManager models = new ModelManager();
    LibraryManager libraries = new LibraryManager(models, CqlCompilerOptions.defaultOptions());
    libraries.getLibrarySourceLoader().registerProvider(new FhirLibrarySourceProvider());
    CqlTranslator translator = CqlTranslator.fromFile(input, libraries);
    boolean failed = false;
    for (CqlCompilerException error : translator.getErrors()) {
      failed = true;
      System.err.println("CQL error " + where(error) + ": " + error.getMessage());
    }
    for (CqlCompilerException warning : translator.getWarnings()) {
      System.err.println("CQL warning " + where(warning) + ": " + warning.getMessage());
    }
    if (failed) {
      System.exit(2);
    }
    StringBuilder written = new StringBuilder();
    String main = translator.toELM().getIdentifier().getId();
    write(output.resolve(main + ".json"), translator.toJson(), written);
    for (Map.Entry<VersionedIdentifier, Library> entry : translator.getLibraries().entrySet()) {
      String id = entry.getKey().getId();
      if (!id.equals(main)) {
        write(output.resolve(id + ".json"), CqlTranslator.convertToJson(entry.getValue()), written);
      }
    }
    long micros = (System.nanoTime() - started) / 1000;
    System.out.println(
        "{\"translate_ms\": " + (micros / 1000.0) + ", \"files\": [" + written + "], \"warnings\": "
            + translator.getWarnings().size() + "}");
  }

  private static String where(CqlCompilerException error) {
    return error.getLocator() == null
        ? "?"
        : error.getLocator().getStartLine() + ":" + error.getLocator().getStartChar();
  }

  private static void write(Path path, String json, StringBuilder written) throws Exception {
    Files.writeString(path, json, StandardCharsets.UTF_8);
    if (written.length() > 0) {
      written.append(", ");
    }
    written.append('"').append(path.getFileName()).append('"');
  }
}
