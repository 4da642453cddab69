/*
 * api_web.c - the dashboard's static files, compiled into the binary
 * (tools/embed.c, meson target `web_embedded`): GET /, /app.js, /style.css,
 * /chart.js.  They need no token; the page asks for one and sends it on its
 * own API calls.  Every answer carries a strict Content-Security-Policy (no
 * inline script or style, nothing from other origins).  It serves only these
 * four fixed buffers and never touches the file system.
 */
#include <string.h>

#include "api/api.h"

extern const unsigned char web_index_html[];
extern const unsigned long web_index_html_len;
extern const unsigned char web_app_js[];
extern const unsigned long web_app_js_len;
extern const unsigned char web_style_css[];
extern const unsigned long web_style_css_len;
extern const unsigned char web_chart_js[];
extern const unsigned long web_chart_js_len;

static const char WEB_CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
		       "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
		       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static void serve(struct req *r, const char *ctype, const unsigned char *data, unsigned long len)
{
	reply_raw(r, 200, ctype, (const char *)data, (size_t)len);
	r->csp = WEB_CSP;
}

void api_web_index(struct req *r)
{
	serve(r, "text/html; charset=utf-8", web_index_html, web_index_html_len);
}

void api_web_app_js(struct req *r)
{
	serve(r, "text/javascript; charset=utf-8", web_app_js, web_app_js_len);
}

void api_web_style_css(struct req *r)
{
	serve(r, "text/css; charset=utf-8", web_style_css, web_style_css_len);
}

void api_web_chart_js(struct req *r)
{
	serve(r, "text/javascript; charset=utf-8", web_chart_js, web_chart_js_len);
}
