package dev.meltemi.demo;

/** The demo service Meltemi routes in its Dubbo end-to-end tests (exported with version "1.0.0"). */
public interface GreetService {
    /** JSON text: {"server":"v1","reply":"hello NAME","attachments":{...what the provider received...},...}. */
    String sayHello(String name);

    /** Returns the payload unchanged (benchmarks send 4 KiB payloads). */
    String echo(String payload);

    /** Always throws IllegalStateException(message): yields a Dubbo "response with exception". */
    String fail(String message);
}
