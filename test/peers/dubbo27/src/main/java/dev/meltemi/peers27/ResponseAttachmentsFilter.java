package dev.meltemi.peers27;

import org.apache.dubbo.rpc.Filter;
import org.apache.dubbo.rpc.Invocation;
import org.apache.dubbo.rpc.Invoker;
import org.apache.dubbo.rpc.Result;
import org.apache.dubbo.rpc.RpcContext;
import org.apache.dubbo.rpc.RpcException;

/**
 * Puts a response's attachments into RpcContext.getServerContext(), where a 2.7 application reads
 * them. Dubbo 2.7 does that in ConsumerContextClusterInterceptor, which only wraps a cluster
 * invoker; a reference to ONE direct URL (ours) gets the protocol's invoker without a cluster, so
 * without this filter the attachments arrive on the wire and are never shown to the caller.
 * Registered in META-INF/dubbo/org.apache.dubbo.rpc.Filter; the consumer names it on its reference.
 */
public final class ResponseAttachmentsFilter implements Filter, Filter.Listener {
    static final String NAME = "meltemiResponseAttachments";

    @Override
    public Result invoke(Invoker<?> invoker, Invocation invocation) throws RpcException {
        return invoker.invoke(invocation);
    }

    @Override
    public void onResponse(Result appResponse, Invoker<?> invoker, Invocation invocation) {
        RpcContext.getServerContext().setObjectAttachments(appResponse.getObjectAttachments());
    }

    @Override
    public void onError(Throwable t, Invoker<?> invoker, Invocation invocation) {
        // nothing to show
    }
}
