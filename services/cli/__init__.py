"""The toolbox: the ``oee`` command and the tools it runs (the whole system on one machine,
embedded servers, load generators). The services never import it."""
