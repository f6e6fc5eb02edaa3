/*
 * svc_http - the table of nova-http.so (http/svc_http.h): the HTTP client
 * and the Stellar client built on it. It lives here, not in http/, because
 * it names both clients, and stellar uses http, never the reverse.
 */
#include "config.h"
#include "http/svc_http.h"
#include "http/http_client.h"
#include "stellar/stellar_client.h"

const struct nova__svc_http nova__svc_http_table = {
    .response_api = &nova__http_response_api,
    .request = nova__http_request_tagged,
    .request_json = nova__http_request_json_tagged,
    .client_new = nova__http_client_new,
    .client_close = nova__http_client_close,
    .cancel_tag = nova__http_cancel_tag,
    .mail = nova__http_mail_tagged,
    .stellar_new = nova__stellar_client_new,
    .stellar_close = nova__stellar_client_close,
    .stellar_ready = nova__stellar_client_ready,
    .stellar_probe = nova__stellar_client_probe,
    .stellar_network = nova__stellar_client_network,
    .stellar_build_payment = nova__stellar_client_build_payment,
    .load_account = nova__stellar_load_account,
    .submit = nova__stellar_submit,
    .tx_lookup = nova__stellar_tx_lookup,
    .latest_ledger = nova__stellar_latest_ledger,
    .rpc_health = nova__stellar_rpc_health,
    .rpc_latest_ledger = nova__stellar_rpc_latest_ledger,
    .get_events = nova__stellar_get_events,
};

#ifdef NOVA_SVC_MODULE
NOVA__SVC_EXPORT("http", nova__svc_http_table);
#endif
