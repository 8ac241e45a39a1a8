package dev.meltemi.thriftpeer;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/** Tiny "--key value" / "--flag" parser (the Dubbo peers' one, without repeated keys). */
final class Args {
    private final Map<String, String> values = new HashMap<>();

    Args(String[] argv, int from, Set<String> flags, Set<String> options) {
        for (int i = from; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument: " + a);
            String key = a.substring(2);
            String val = null;
            int eq = key.indexOf('=');
            if (eq >= 0) { val = key.substring(eq + 1); key = key.substring(0, eq); }
            if (flags.contains(key)) { values.put(key, val == null ? "true" : val); continue; }
            if (!options.contains(key)) throw new IllegalArgumentException("unknown option: --" + key);
            if (val == null) {
                if (i + 1 >= argv.length) throw new IllegalArgumentException("missing value for --" + key);
                val = argv[++i];
            }
            values.put(key, val);
        }
    }

    String get(String key, String def) { return values.getOrDefault(key, def); }

    /** The value, which must be one of `allowed`. */
    String choice(String key, String def, String... allowed) {
        String v = get(key, def);
        for (String a : allowed) if (a.equals(v)) return v;
        throw new IllegalArgumentException("--" + key + " must be one of " + String.join("|", allowed) + ", got: " + v);
    }

    int getInt(String key, int def) {
        String v = values.get(key);
        return v == null ? def : Integer.parseInt(v);
    }

    boolean flag(String key) {
        String v = values.get(key);
        return v != null && !v.equals("false");
    }
}
