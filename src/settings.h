/* settings.h: the key-file configuration, with its defaults. */
#pragma once

#include <glib.h>

/* Load path (NULL: defaults only) and fill in every default.  0 or -errno
 * with the message recorded. */
int settings_load(const char *path, GKeyFile **out);

/* Render the effective settings, secrets masked, for .epfs/config. */
void settings_render(GKeyFile *kf, GString *out);

/* A double setting, or def. */
double settings_double(GKeyFile *kf, const char *group, const char *key, double def);
