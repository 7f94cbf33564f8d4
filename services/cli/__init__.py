"""The toolbox: the ``oee`` command and what it runs (one service per process, the whole
system on one machine, embedded servers, the audit trail). The load generators and the
measuring tools are in ``bench``. The services never import either."""
