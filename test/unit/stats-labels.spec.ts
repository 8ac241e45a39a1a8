import { label, labelValue, SERVICE, ROUTE, CLUSTER, OPERATION, OTHER } from "../../assembly/stats-labels";

describe("metric labels", () => {
  it("writes a label as Istio's extraStatTags regex finds it", () => {
    expect(label(ROUTE, "default")).toBe("meltemi_route=.=default;.;");
    expect(label(SERVICE, "greeter.shop.svc.cluster.local")).toBe("meltemi_service=.=greeter.shop.svc.cluster.local;.;");
  });

  it("keeps Istio cluster names and Dubbo operations as they are", () => {
    expect(label(CLUSTER, "outbound|9090|v2|greeter.shop.svc.cluster.local")).toBe("meltemi_cluster=.=outbound|9090|v2|greeter.shop.svc.cluster.local;.;");
    expect(labelValue("org.apache.dubbo.GreetService/sayHello")).toBe("org.apache.dubbo.GreetService/sayHello");
    expect(labelValue("hello-to-v2_1:x")).toBe("hello-to-v2_1:x");
    expect(label(CLUSTER, OTHER)).toBe("meltemi_cluster=.=_other;.;");
  });

  it("cannot end its tag early or break the Prometheus text: wire bytes become '_'", () => {
    // A method name from the wire that tries to close the tag and open another.
    expect(label(OPERATION, "x;.;meltemi_route=.=evil")).toBe("meltemi_operation=.=x_._meltemi_route_._evil;.;");
    expect(labelValue("say\"Hello\"\n")).toBe("say_Hello__");
    expect(labelValue("a b\\c")).toBe("a_b_c");
    expect(labelValue("caf\u00e9")).toBe("caf_");
  });

  it("never writes an empty stat-name token or an empty value", () => {
    expect(labelValue("a..b...c")).toBe("a._b.__c");
    expect(labelValue("")).toBe("-");
  });

  it("replaces every bad character of a long hostile value", () => {
    // 36,864 characters, half of them bad (that it takes one pass, not one copy per bad
    // character, test/wasm/hostile-lengths.test.mjs checks in the real build).
    let hostile = "";
    for (let i = 0; i < 1024; i++) hostile += "a\u0001b c\"d;e";
    const v = labelValue(hostile + hostile + hostile + hostile);
    expect(v.length).toBe(4 * hostile.length);
    expect(v.substring(0, 16)).toBe("a_b_c_d_ea_b_c_d");
    expect(v.indexOf(";")).toBe(-1);
  });
});

