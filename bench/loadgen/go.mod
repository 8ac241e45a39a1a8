module meltemi.dev/bench/loadgen

go 1.22

require github.com/apache/thrift v0.17.0
