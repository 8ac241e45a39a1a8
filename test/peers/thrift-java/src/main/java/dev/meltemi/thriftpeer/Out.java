package dev.meltemi.thriftpeer;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** stdout: only the READY line and one JSON object per line, each written whole. */
final class Out {
    static final Gson GSON = new GsonBuilder().serializeNulls().disableHtmlEscaping().create();
    private static final PrintStream OUT = new PrintStream(System.out, false, StandardCharsets.UTF_8);

    private Out() {}

    static synchronized void line(String s) {
        OUT.print(s);
        OUT.print('\n');
        OUT.flush();
    }

    static void json(Object o) { line(GSON.toJson(o)); }
}
