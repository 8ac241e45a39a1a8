package dev.meltemi.demo;

/** A second interface, so tests can route by interface name. */
public interface OrderService {
    /** JSON text: {"server":"v1","reply":"order ID","attachments":{...},...}. */
    String getOrder(String id);
}
