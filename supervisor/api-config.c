/* SPDX-License-Identifier: MIT */
/* GET /v1/config: what 'sandpoold --print-config' prints, as JSON, from
 * the running daemon (which alone knows its environment and the file it
 * read). Only administrators: the configuration says where the image,
 * the state and the cgroups live, which is none of a plain client's
 * business. */
#include <string.h>

#include "api-config.h"
#include "build-config.h"
#include "http.h"

#define REDACTED "(redacted)"

bool api_config_key_is_secret(const char *key) {
        static const char *const words[] = { "secret", "password", "token", "credential", "private_key" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strstr(key, words[i]))
                        return true;
        return false;
}

static void add_key(const char *section, const char *key, const char *value, sp_config_source source,
                    const char *where, void *userdata) {
        json_t *keys = userdata;
        bool secret = api_config_key_is_secret(key);

        json_array_append_new(keys, json_pack("{s:s,s:s,s:s,s:s,s:s?,s:b}", "section", section, "key", key, "value",
                                              secret ? REDACTED : value, "source", sp_config_source_to_string(source),
                                              "where", where, "redacted", secret));
}

void api_config(request *r) {
        const server *srv = r->srv;
        json_t *keys, *notices;

        if (!r->cl->admin)
                return reply_error(r, 403, "forbidden", "the configuration is for root and the admin group ('%s')",
                                   srv->config.cfg.admin_group);
        keys = json_array();
        notices = json_array();
        if (!keys || !notices) {
                json_decref(keys);
                json_decref(notices);
                return reply_error(r, 500, "internal", "out of memory");
        }
        sp_config_visit(&srv->config, add_key, keys);
        for (const char *p = srv->config.notices; p && *p;) {
                const char *nl = strchrnul(p, '\n');
                json_array_append_new(notices, json_stringn(p, (size_t) (nl - p)));
                p = *nl ? nl + 1 : nl;
        }
        reply_json(r, 200,
                   json_pack("{s:s,s:o,s:o}", "file",
                             srv->config_path ? srv->config_path : SANDPOOL_SYSCONFDIR "/sandpool/sandpool.conf",
                             "keys", keys, "notices", notices));
}
