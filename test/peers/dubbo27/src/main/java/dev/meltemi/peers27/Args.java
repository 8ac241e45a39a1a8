package dev.meltemi.peers27;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Tiny "--key value" / "--flag" parser; repeated keys are kept in order. */
final class Args {
    private final Map<String, List<String>> values = new HashMap<>();
    private final Set<String> flags;

    Args(String[] argv, int from, Set<String> knownFlags, Set<String> knownOptions) {
        this.flags = knownFlags;
        for (int i = from; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument: " + a);
            String key = a.substring(2);
            String val = null;
            int eq = key.indexOf('=');
            if (eq >= 0) { val = key.substring(eq + 1); key = key.substring(0, eq); }
            if (knownFlags.contains(key)) {
                values.computeIfAbsent(key, k -> new ArrayList<>()).add(val == null ? "true" : val);
                continue;
            }
            if (!knownOptions.contains(key)) throw new IllegalArgumentException("unknown option: --" + key);
            if (val == null) {
                if (i + 1 >= argv.length) throw new IllegalArgumentException("missing value for --" + key);
                val = argv[++i];
            }
            values.computeIfAbsent(key, k -> new ArrayList<>()).add(val);
        }
    }

    String get(String key, String def) {
        List<String> v = values.get(key);
        return v == null ? def : v.get(v.size() - 1);
    }

    int getInt(String key, int def) {
        String v = get(key, null);
        return v == null ? def : Integer.parseInt(v);
    }

    boolean flag(String key) {
        String v = get(key, null);
        return v != null && !v.equals("false");
    }

    /** Repeated "k=v" options, in order. */
    Map<String, String> pairs(String key) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String kv : values.getOrDefault(key, List.of())) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--" + key + " wants k=v, got: " + kv);
            out.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return out;
    }

    /** "10s", "500ms", "2m", or a plain number of seconds; returns milliseconds. */
    static long parseDurationMs(String s) {
        s = s.trim();
        if (s.endsWith("ms")) return Long.parseLong(s.substring(0, s.length() - 2));
        if (s.endsWith("s")) return (long) (Double.parseDouble(s.substring(0, s.length() - 1)) * 1000);
        if (s.endsWith("m")) return (long) (Double.parseDouble(s.substring(0, s.length() - 1)) * 60000);
        return (long) (Double.parseDouble(s) * 1000);
    }
}
