# One-time set-up of a freshly migrated lab AWX database (tests/lab/awx/up feeds
# it to `awx-manage shell`; the result is cached as the database snapshot).
# What AWX's own docker-compose bootstrap does, plus the settings podman needs
# on these machines (they take effect only as database settings, not in the
# settings file: see ../shared/upstream/AWX-NOTES.md).
import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.contrib.auth.models import User

if not User.objects.filter(username='admin').exists():
    User.objects.create_superuser('admin', 'admin@localhost', os.environ['DJANGO_SUPERUSER_PASSWORD'])
call_command('create_preload_data')
call_command('register_default_execution_environments')
call_command('provision_instance', hostname=settings.CLUSTER_HOST_ID, node_type='hybrid')
call_command('register_queue', queuename='controlplane', instance_percent=100)
call_command('register_queue', queuename='default', instance_percent=100)

from awx.main.models import CredentialType  # noqa: E402

CredentialType.setup_tower_managed_defaults()
names = sorted(CredentialType.objects.filter(managed=True).values_list('namespace', flat=True))
if 'ssh' not in names or 'kubernetes_bearer_token' not in names:
    sys.exit(f'bootstrap: built-in credential types missing (have {names})')

# podman in this VM: no slirp4netns (host network), setrlimit refused above the
# hard limits, and no /etc/pki (Debian) to show to the job.
settings.DEFAULT_CONTAINER_RUN_OPTIONS = ['--network', 'host',
                                          '--ulimit', 'nofile=1024:20000', '--ulimit', 'nproc=4096:4096']
settings.AWX_ISOLATION_SHOW_PATHS = []
print('bootstrap: done; credential types:', ', '.join(names))
