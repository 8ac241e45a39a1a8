package dev.meltemi.thriftpeer;

import java.io.ByteArrayOutputStream;
import java.util.HexFormat;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;

/** A transport that passes everything to the socket under it and keeps the bytes each way. */
final class Tracing extends TTransport {
    private final TTransport inner;
    private ByteArrayOutputStream sent = new ByteArrayOutputStream();
    private ByteArrayOutputStream received = new ByteArrayOutputStream();

    Tracing(TTransport inner) { this.inner = inner; }

    @Override public boolean isOpen() { return inner.isOpen(); }
    @Override public void open() throws TTransportException { inner.open(); }
    @Override public void close() { inner.close(); }
    @Override public void flush() throws TTransportException { inner.flush(); }
    @Override public TConfiguration getConfiguration() { return inner.getConfiguration(); }
    @Override public void updateKnownMessageSize(long size) throws TTransportException { inner.updateKnownMessageSize(size); }
    @Override public void checkReadBytesAvailable(long n) throws TTransportException { inner.checkReadBytesAvailable(n); }

    @Override
    public int read(byte[] buf, int off, int len) throws TTransportException {
        int n = inner.read(buf, off, len);
        if (n > 0) received.write(buf, off, n);
        return n;
    }

    @Override
    public void write(byte[] buf, int off, int len) throws TTransportException {
        inner.write(buf, off, len);
        sent.write(buf, off, len);
    }

    /** The bytes written and read since the last take(), as hex. */
    String[] take() {
        String[] out = {HexFormat.of().formatHex(sent.toByteArray()), HexFormat.of().formatHex(received.toByteArray())};
        sent = new ByteArrayOutputStream();
        received = new ByteArrayOutputStream();
        return out;
    }
}
