// Test IDL for Meltemi's Thrift peers. Regenerate the committed Node, Python and Java code with
//   bash test/peers/thrift/gen.sh
// (needs the `thrift` compiler: Debian package thrift-compiler, see scripts/setup-debian.sh).
namespace js meltemi.test
namespace py meltemi_test
namespace java dev.meltemi.thrift

exception GreetError {
  1: i32 code,
  2: string message
}

service Greeter {
  string sayHello(1: string name),
  oneway void ping(1: string note),
  string echo(1: string payload),
  i32 add(1: i32 a, 2: i32 b) throws (1: GreetError err)
}

service Calculator {
  i32 multiply(1: i32 a, 2: i32 b),
  string whoami()
}
