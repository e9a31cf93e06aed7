/* SPDX-License-Identifier: MIT */
#pragma once

/* GET/PUT/DELETE /v1/sessions/{id}/files?path=...: the file API. */

#include "http.h"

/* PUT streams the body: begin when the headers are in, then each chunk, then the end. */
void api_files_get(request *r);
void api_files_delete(request *r);
void api_files_put_begin(request *r);
int api_files_put_data(request *r, const char *data, size_t len);
void api_files_put_end(request *r);
